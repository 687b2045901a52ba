"""Celery tasks of workloads: ids in, one reconcile pass each, safe to run twice."""
from datetime import timedelta

from sqlalchemy import select

from berth import db
from berth.celery_app import celery, enqueue, settings
from berth.clock import utcnow
from berth.models import Application
from berth.workloads.autoscaling import autoscale_all
from berth.workloads.metrics import collect_cpu
from berth.workloads.orphans import sweep_orphans
from berth.workloads.reconcile import reconcile_application

# How long a deploy keeps re-checking on its own before leaving it to the periodic reconcile.
DEPLOY_DEADLINE = timedelta(minutes=10)
RECHECK_S = 1.0


@celery.task(name="berth.workloads.tasks.deploy_application")
def deploy_application(app_id: int) -> dict:
    """One pass, then again shortly while something is still starting, waiting or stopping
    (a teardown runs through here too); it stops once settled, or gone."""
    result = reconcile_application(app_id, settings())
    app = db.session.get(Application, app_id)
    if app is None:
        return {"application": app_id, "gone": True}
    started = app.deploy_started_at or utcnow()
    if result is None or (not result.settled and utcnow() - started < DEPLOY_DEADLINE):
        db.after_commit(lambda: deploy_application.apply_async(args=(app_id,), countdown=RECHECK_S))
    if result is None:
        return {"application": app_id, "busy": True}
    return {"application": app_id, "converged": result.converged, "created": result.created,
            "removed": result.removed, "waiting": result.waiting, "failed": result.failed,
            "problems": result.problems}


@celery.task(name="berth.workloads.tasks.reconcile_all")
def reconcile_all() -> dict:
    """The level-triggered safety net: every application, every period, whatever was lost."""
    ids = list(db.session.scalars(select(Application.id)))
    db.session.commit()
    done = {}
    for app_id in ids:
        result = reconcile_application(app_id, settings())
        db.session.commit()
        done[app_id] = None if result is None else result.converged
    orphans = sweep_orphans(settings())
    return {"applications": len(ids), "converged": sum(bool(v) for v in done.values()),
            "orphans_removed": orphans}


@celery.task(name="berth.workloads.tasks.collect_container_cpu")
def collect_container_cpu() -> dict:
    """Fresh CPU on every running instance, then the autoscaler decides on it."""
    sampled = collect_cpu()
    enqueue(autoscale_services)
    return {"sampled": sampled}


@celery.task(name="berth.workloads.tasks.autoscale_services")
def autoscale_services() -> dict:
    """Safe twice in a row: a second scale-up waits out the cooldown, a second scale-down
    is held by the first one's recommendation."""
    return autoscale_all()
