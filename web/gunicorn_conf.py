"""gunicorn settings used by the Procfile: each worker reports its runtime once it is up."""
import gc
import json

from berth import runtime


def post_worker_init(worker):
    # The loaded app leaves ~150k long-lived objects (modules, mappers, templates) that every
    # full collection scans again: ~50 ms each, a few per 200 requests of the services list,
    # which set its p99 (benchmarks/pages.py: 65 ms; 18 ms frozen). Freezing them moves them
    # out of the collector's sight; what requests allocate is collected as before.
    gc.collect()
    gc.freeze()
    worker.log.info("berth runtime: %s", json.dumps(runtime.describe()))
