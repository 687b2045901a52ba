"""Prometheus metrics at /metrics: requests and latency per endpoint (QPS, mean, P999).

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (the run script does),
so /metrics sums every worker, not just the one that answered.
"""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest,
)
from prometheus_client import REGISTRY, multiprocess

from berth import db
from berth.monitoring.exporter import BerthCollector

# Fine buckets at the low end: a P999 needs them where most requests fall.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                   0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("berth_http_requests_total", "HTTP requests answered",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("berth_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["method", "endpoint"], buckets=LATENCY_BUCKETS)


# Berth's view of the fleet (berth_* series), read from the database at scrape time.
FLEET = BerthCollector(lambda: db.session)


def _registry() -> CollectorRegistry | None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(FLEET)
        return registry
    return None


def _register_fleet() -> None:
    """The plain (one-process) registry gets the fleet collector once per process."""
    if FLEET not in getattr(REGISTRY, "_collector_to_names", {}):
        REGISTRY.register(FLEET)


def init_app(app: Flask) -> None:
    _register_fleet()

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("request_started", None)
        if started is not None:
            # The route pattern, not the raw path, so label values stay few.
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
            REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        return response

    @app.get("/metrics")
    def metrics():
        registry = _registry()
        payload = generate_latest(registry) if registry else generate_latest()
        return Response(payload, mimetype=CONTENT_TYPE_LATEST)
