"""Celery tasks of image replication: thin wrappers, ids in, one service call."""
from __future__ import annotations

from berth.celery_app import celery


# While another job syncs the same mirror, this one waits its turn by retrying (bounded:
# the periodic reconcile sends a queued job again anyway).
WAIT_RETRY_S, WAIT_RETRIES = 2, 300


@celery.task(name="registry_sync.tasks.run_sync_job", bind=True)
def run_sync_job(self, job_id: int) -> dict:
    from registry_sync import run

    result = run.run_job(job_id)
    if result["status"] == run.WAITING and self.request.retries < WAIT_RETRIES:
        raise self.retry(countdown=WAIT_RETRY_S, max_retries=WAIT_RETRIES)
    return result


@celery.task(name="registry_sync.tasks.probe_registries")
def probe_registries() -> dict:
    from registry_sync import registries

    return registries.probe_all()


@celery.task(name="registry_sync.tasks.reconcile_mirrors", single_flight=True)
def reconcile_mirrors() -> dict:
    from registry_sync import run

    return run.reconcile_all()
