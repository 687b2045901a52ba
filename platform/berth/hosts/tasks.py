"""Celery tasks of the inventory: thin wrappers, ids in, one service call.

Both run on the `probes` queue (berth.celery_app.PROBE_TASKS), never behind deploys.
"""
from berth.celery_app import RETRY, celery, limits, settings
from berth.hosts import services


# No retries: the next round is one probe interval away and a late probe is a stale one.
@celery.task(name="berth.hosts.tasks.probe_all_hosts", single_flight=True, **limits("probe"))
def probe_all_hosts() -> dict:
    config = settings()
    results = services.probe_hosts(None, failures_for_down=config.probe_failures_for_down,
                                   timeout_s=config.probe_timeout_s)
    return {"probed": len(results), "failed": sum(r.info is None for r in results)}


@celery.task(name="berth.hosts.tasks.probe_host", **limits("probe"), **RETRY)
def probe_host(host_id: int) -> dict:
    config = settings()
    [result] = services.probe_hosts([host_id], failures_for_down=config.probe_failures_for_down,
                                    timeout_s=config.probe_timeout_s) or [None]
    return {"host_id": host_id, "answered": bool(result and result.info)}
