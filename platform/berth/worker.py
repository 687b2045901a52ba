"""Entry point of the Celery worker and beat (see the Procfile): `celery -A berth.worker`."""
import json
import logging
import os

from celery.signals import beat_init, worker_process_init, worker_ready

from berth import db, runtime, vault
from berth.celery_app import celery, configure_celery
from berth.config import Config

# Everything these processes write goes into the private instance folder, also what they
# don't open themselves: beat's schedule is a shelve, which takes its files' mode from the
# umask (0644 under the usual 022).
os.umask(0o077)
config = Config.from_env()
db.configure(config.database_url)
vault.configure(config.secrets_keys)
configure_celery(config)


@worker_process_init.connect
def _fresh_connections_after_fork(**_):
    # Connections must not cross a fork: each pool process opens its own.
    db.engine().dispose(close=False)


__all__ = ["celery"]


@worker_ready.connect
@beat_init.connect
def _log_runtime(**_):
    logging.getLogger("berth").info("berth runtime: %s", json.dumps(runtime.describe()))
