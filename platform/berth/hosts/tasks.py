"""Celery tasks of the inventory: thin wrappers, ids in, one service call."""
from berth.celery_app import celery, settings
from berth.hosts import services


@celery.task(name="berth.hosts.tasks.probe_all_hosts")
def probe_all_hosts() -> dict:
    config = settings()
    results = services.probe_hosts(None, failures_for_down=config.probe_failures_for_down,
                                   timeout_s=config.probe_timeout_s)
    return {"probed": len(results), "failed": sum(r.info is None for r in results)}


@celery.task(name="berth.hosts.tasks.probe_host")
def probe_host(host_id: int) -> dict:
    config = settings()
    [result] = services.probe_hosts([host_id], failures_for_down=config.probe_failures_for_down,
                                    timeout_s=config.probe_timeout_s) or [None]
    return {"host_id": host_id, "answered": bool(result and result.info)}
