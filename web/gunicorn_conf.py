"""gunicorn settings used by the Procfile: each worker reports its runtime once it is up."""
import json

from berth import runtime


def post_worker_init(worker):
    worker.log.info("berth runtime: %s", json.dumps(runtime.describe()))
