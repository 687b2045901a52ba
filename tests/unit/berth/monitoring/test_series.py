"""The pages' series: from a (fake, real-HTTP) Prometheus when it answers, else Berth's own
last samples; and the small Prometheus client behind them (errors are None, never raised)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from berth import db
from berth.models import (Application, Cluster, ContainerInstance, Event, Host, Pool, Project,
                          Service)
from berth.monitoring import series
from berth.monitoring.prom import Prometheus, number


class FakePrometheus:
    """Prometheus' HTTP API on 127.0.0.1: answers each query from `answers` (a function of
    the PromQL), records the queries."""

    def __init__(self, answer, delay_s: float = 0.0):
        self.queries: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.queries.append({"path": parts.path, **params})
                time.sleep(delay_s)
                body = answer(parts.path, params)
                data = json.dumps(body).encode()
                self.send_response(200 if body.get("status") == "success" else 400)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _matrix(metric: dict, values: list) -> dict:
    return {"metric": metric, "values": [[ts, str(v)] for ts, v in values]}


def _answer(path, params):
    query = params["query"]
    if path == "/api/v1/query":  # top: by application and service
        return {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"application": "shop", "service": "web"}, "value": [1, "12.5"]},
            {"metric": {"application": "shop", "service": "other"}, "value": [1, "99"]}]}}
    if "histogram_quantile" in query:
        value = 0.25
    elif "code=~" in query:
        value = 0.1
    elif "_sum" in query:
        value = 0.02
    elif "_count" in query:
        value = 40.0
    elif "berth_container_cpu_percent" in query:
        return {"status": "success", "data": {"resultType": "matrix", "result": [
            _matrix({"instance": "shop-web-0", "revision": "2"}, [[100, 30], [110, 50]]),
            _matrix({"instance": "shop-web-1", "revision": "2"}, [[100, 10], [110, "NaN"]])]}}
    elif "berth_service_error_lines_total" in query:
        return {"status": "success", "data": {"resultType": "matrix", "result": [
            _matrix({}, [[100, 3], [110, 6]])]}}
    elif "berth_service_replicas" in query:
        return {"status": "success", "data": {"resultType": "matrix", "result": [
            _matrix({"state": "desired"}, [[100, 2], [110, 2]])]}}
    else:
        value = 1.0
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        _matrix({"revision": "2", "job": "x"}, [[100, value], [110, value]])]}}


@pytest.fixture
def shop(database):
    pool = Pool(name="p1", cluster=Cluster(name="c1"))
    host = Host(name="h1", pool=pool, endpoint="tcp://127.0.0.1:1", cpus=4.0, memory=2**30)
    project = Project(name="team")
    app = Application(name="shop", project=project)
    web = Service(application=app, name="web", image="i:1", replicas=2, ports=[0],
                  metrics={"port": 0, "path": "/metrics"})
    plain = Service(application=app, name="other", image="i:1", replicas=1)
    database.add_all([host, web, plain])
    database.flush()
    database.add_all([
        ContainerInstance(service_id=web.id, host_id=host.id, slot=0, revision=2, name="shop-web-0",
                          state="running", health="healthy", cpu_percent=40.0, memory_bytes=1000),
        ContainerInstance(service_id=web.id, host_id=host.id, slot=1, revision=2, name="shop-web-1",
                          state="running", health="starting", cpu_percent=20.0, memory_bytes=500),
        ContainerInstance(service_id=plain.id, host_id=host.id, slot=0, revision=1,
                          name="shop-other-0", state="running", cpu_percent=70.0),
        Event(kind="service.scale", subject="shop/web", actor="autoscaler",
              message="shop/web: 1 -> 2 replicas (CPU 81% over 50%)"),
        Event(kind="service.scale", subject="shop/web", actor="alice", message="by hand"),
    ])
    database.commit()
    return web, plain, host


def test_without_prometheus_berth_shows_its_own_last_samples(shop):
    web, _plain, host = shop
    answer = series.service_series(web, 3600, 30, prom=Prometheus(""))
    assert (answer["source"], answer["note"]) == ("berth", series.NOT_CONFIGURED)
    assert all(answer["series"][name] == [] for name in series.REQUEST_SERIES)
    assert answer["series"]["error_lines_per_min"] == []  # a rate needs Prometheus' history
    cpu = {s["labels"]["instance"]: s["points"][0][1] for s in answer["series"]["cpu_percent"]}
    assert cpu == {"shop-web-0": 40.0, "shop-web-1": 20.0}
    replicas = {s["labels"]["state"]: s["points"][0][1] for s in answer["series"]["replicas"]}
    assert replicas == {"desired": 2, "running": 2, "healthy": 1}
    assert answer["current"]["qps"] is None and answer["current"]["memory_bytes"] == 1500
    assert [m["kind"] for m in answer["markers"]] == ["autoscale"]  # not the operator's scale
    host_answer = series.host_series(host, 3600, 30, prom=Prometheus(""))
    assert host_answer["current"] == {"cpu_used": 1.3, "memory_used": 1500.0}
    assert host_answer["capacity"] == {"cpus": 4.0, "memory": 2**30}


def test_with_prometheus_the_series_come_from_it(shop):
    web, _plain, _host = shop
    fake = FakePrometheus(_answer)
    try:
        prom = Prometheus(fake.url)
        prom.scrape_interval_s = 1.0
        answer = series.service_series(web, 600, 10, prom=prom)
    finally:
        fake.close()
    assert answer["source"] == "prometheus" and answer["note"] is None
    assert answer["series"]["qps"] == [{"labels": {"revision": "2"},
                                        "points": [[100.0, 40.0], [110.0, 40.0]]}]
    assert answer["current"]["p999_s"] == 0.25 and answer["current"]["error_ratio"] == 0.1
    # NaN is no point; the CPU now is the average of the instances' last points.
    assert answer["series"]["cpu_percent"][1]["points"] == [[100.0, 10.0]]
    assert answer["current"]["cpu_percent"] == 30.0
    assert answer["series"]["error_lines_per_min"] == [{"labels": {},
                                                        "points": [[100.0, 3.0], [110.0, 6.0]]}]
    queries = [q["query"] for q in fake.queries]
    assert any('application="shop",service="web"' in q and "[10s]" in q and
               "http_request_duration_seconds_count" in q for q in queries)
    assert all(q["path"] == "/api/v1/query_range" and q["step"] == "10" for q in fake.queries)


def test_an_unreachable_or_slow_or_failing_prometheus_falls_back(shop):
    web, _plain, _host = shop
    slow = FakePrometheus(_answer, delay_s=3.0)
    failing = FakePrometheus(lambda path, params: {"status": "error", "error": "bad"})
    try:
        for url in (slow.url, failing.url, "http://127.0.0.1:1"):
            started = time.monotonic()
            answer = series.service_series(web, 600, 10, prom=Prometheus(url))
            assert (answer["source"], answer["note"]) == ("berth", series.UNREACHABLE)
            assert time.monotonic() - started < 2.9  # the 2 s timeout, not the 3 s delay
    finally:
        slow.close()
        failing.close()


def test_top_services(shop):
    web, plain, _host = shop
    by_cpu = series.top_services(None, "cpu_percent", 10, prom=Prometheus(""))
    assert by_cpu["services"] == [{"application": "shop", "service": "other", "value": 70.0},
                                  {"application": "shop", "service": "web", "value": 30.0}]
    assert series.top_services([web.id], "cpu_percent", 10)["services"] == [
        {"application": "shop", "service": "web", "value": 30.0}]
    fake = FakePrometheus(_answer)
    try:
        by_qps = series.top_services(None, "qps", 1, prom=Prometheus(fake.url))
    finally:
        fake.close()
    # `other` declares no metrics: Prometheus' figure for it is not taken.
    assert by_qps == {"source": "prometheus", "by": "qps", "services": [
        {"application": "shop", "service": "web", "value": 12.5}]}
    assert series.top_services(None, "qps", 5, prom=Prometheus(""))["source"] == "berth"


def test_numbers_as_prometheus_writes_them():
    assert number("1.5") == 1.5
    assert number("NaN") is None and number("+Inf") is None and number(None) is None
    assert series.default_step(3600) == 30 and series.default_step(600) == 10
