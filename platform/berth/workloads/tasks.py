"""Celery tasks of workloads: ids in, one reconcile pass each, safe to run twice."""
from datetime import timedelta

from berth import db
from berth.celery_app import RETRY, celery, enqueue, limits, settings
from berth.clock import utcnow
from berth.models import Application
from berth.workloads.autoscaling import autoscale_all
from berth.workloads.metrics import collect_cpu
from berth.workloads.round import reconcile_application, run_round
from berth.workloads.signals import sample_signals

# How long a deploy keeps re-checking on its own before leaving it to the periodic reconcile.
DEPLOY_DEADLINE = timedelta(minutes=10)
RECHECK_S = 1.0


@celery.task(name="berth.workloads.tasks.deploy_application", **limits("deploy"), **RETRY)
def deploy_application(app_id: int, chain: str | None = None) -> dict:
    """One pass, then again shortly while something is still starting, waiting or stopping
    (a teardown runs through here too); it stops once settled, or gone.

    Each deploy, scale or release action starts a chain of these, named by the action's
    time (`deploy_started_at`); a chain that a later action superseded ends, so actions in
    quick succession leave one chain re-checking, not one each."""
    app = db.session.get(Application, app_id)
    name = _chain_of(app) if app is not None else None
    if chain is not None and name is not None and chain != name:
        return {"application": app_id, "superseded": True}
    result = reconcile_application(app_id, settings())
    app = db.session.get(Application, app_id)
    if app is None:
        return {"application": app_id, "gone": True}
    started = app.deploy_started_at or utcnow()
    if result is None or (not result.settled and utcnow() - started < DEPLOY_DEADLINE):
        db.after_commit(lambda: deploy_application.apply_async(args=(app_id, name),
                                                               countdown=RECHECK_S))
    if result is None:
        return {"application": app_id, "busy": True}
    return {"application": app_id, "converged": result.converged, "created": result.created,
            "removed": result.removed, "waiting": result.waiting, "failed": result.failed,
            "problems": result.problems}


def _chain_of(app: Application) -> str:
    return app.deploy_started_at.isoformat() if app.deploy_started_at else ""


@celery.task(name="berth.workloads.tasks.reconcile_all", single_flight=True, **limits("reconcile"))
def reconcile_all() -> dict:
    """The level-triggered safety net: every application, every period, whatever was lost."""
    return run_round(settings())


@celery.task(name="berth.workloads.tasks.collect_container_cpu", single_flight=True,
             **limits("metrics"))
def collect_container_cpu() -> dict:
    """Fresh CPU on every running instance, then the autoscaler decides on it."""
    sampled = collect_cpu(settings())
    enqueue(autoscale_services)
    return {"sampled": sampled}


@celery.task(name="berth.workloads.tasks.sample_release_signals", single_flight=True,
             **limits("metrics"))
def sample_release_signals() -> dict:
    """New log lines, error lines and memory of every instance of a service in a release."""
    return sample_signals(settings())


@celery.task(name="berth.workloads.tasks.autoscale_services", **limits("autoscale"), **RETRY)
def autoscale_services() -> dict:
    """Safe twice in a row: a scale-up waits for the replicas it asked for to be ready (and
    for its cooldown) before asking for more; a second scale-down counts the instances still
    running, so it asks for the same count again."""
    return autoscale_all()
