"""HTML pages that span areas: the overview dashboard, and the monitoring figures the service
and application pages show (template globals, below)."""
from __future__ import annotations

import logging

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from berth import db
from berth.models import Application, ContainerInstance, Host, Service
from berth.workloads import access
from web.events import events_for

log = logging.getLogger(__name__)

blueprint = Blueprint("pages", __name__)

# Service statuses as the dashboard groups them (the rest, e.g. pending/waiting, are degraded).
FAILING = ("failing", "failed", "unschedulable")
TOP_BY = (("qps", "QPS"), ("p999_s", "P999"), ("error_ratio", "error ratio"),
          ("cpu_percent", "CPU"))
TOP_LIMIT = 5


def _series_module():
    """berth.monitoring.series: a seam the tests replace with a fake."""
    from berth.monitoring import series

    return series


def _visible_service_ids(user) -> list[int] | None:
    """None (every service) for a system administrator, else the ids of the services in the
    user's projects: one query."""
    if user.is_admin:
        return None
    applications = access.visible_applications(user).with_only_columns(Application.id).order_by(None)
    return list(db.session.scalars(select(Service.id).where(Service.application_id.in_(applications))))


def _top(service_ids: list[int] | None) -> dict:
    """The top services by each figure; a figure that fails is shown as not available."""
    series = _series_module()
    tops = {}
    for by, _label in TOP_BY:
        try:
            tops[by] = series.top_services(service_ids, by, TOP_LIMIT)
        except Exception:  # noqa: BLE001 - a monitoring fault must not take the dashboard down
            log.exception("top services by %s failed", by)
            tops[by] = {"source": None, "by": by, "services": [], "error": True}
    return tops


def _overview() -> dict:
    by_liveness = dict(db.session.execute(
        select(Host.liveness, func.count()).group_by(Host.liveness)).all())
    by_status = dict(db.session.execute(
        select(Service.status, func.count()).group_by(Service.status)).all())
    healthy = by_status.pop("healthy", 0)
    failing = sum(by_status.pop(status, 0) for status in FAILING)
    running = db.session.scalar(
        select(func.count()).select_from(ContainerInstance)
        .where(ContainerInstance.state == "running"))
    # The same rule as /events: a user sees only events about what they may see (a private
    # project's creation told its name to everyone before).
    events = events_for(current_user, limit=20)
    return {"hosts": by_liveness, "services_healthy": healthy,
            "services_degraded": sum(by_status.values()), "services_failing": failing,
            "instances_running": running or 0, "events": events,
            "top": _top(_visible_service_ids(current_user)), "top_by": TOP_BY}


@blueprint.get("/")
@login_required
def dashboard():
    return render_template("dashboard.html", **_overview())


@blueprint.get("/overview")
@login_required
def overview():
    """The dashboard's body; htmx refreshes it every 10 seconds."""
    return render_template("_overview.html", **_overview())


# Template globals for the service and application pages

@blueprint.app_template_global()
def service_figures(service: Service, instances: list[ContainerInstance]) -> dict:
    """What Berth itself knows of a service now (no Prometheus, no JavaScript needed): its
    replicas by state, CPU and memory per instance and in all, and its log error lines."""
    return figures_of(service, instances)


def figures_of(service: Service, instances: list[ContainerInstance]) -> dict:
    live = [i for i in instances if i.state != "removed"]
    running = [i for i in live if i.state == "running"]
    cpu = [i.cpu_percent for i in running if i.cpu_percent is not None]
    memory = [i.memory_bytes for i in running if i.memory_bytes is not None]
    lines = sum(i.log_lines or 0 for i in live)
    errors = sum(i.error_lines or 0 for i in live)
    return {
        "desired": service.replicas, "running": len(running),
        "healthy": sum(1 for i in running if i.health in (None, "healthy")),
        "cpu_percent": sum(cpu) if cpu else None,
        "cpu_percent_avg": sum(cpu) / len(cpu) if cpu else None,
        "memory_bytes": sum(memory) if memory else None,
        "log_lines": lines, "error_lines": errors,
        "error_line_ratio": errors / lines if lines else None,
        "per_instance": [{"name": i.name, "revision": i.revision, "state": i.state,
                          "cpu_percent": i.cpu_percent, "memory_bytes": i.memory_bytes,
                          "log_lines": i.log_lines or 0, "error_lines": i.error_lines or 0}
                         for i in sorted(live, key=lambda i: (i.slot, i.revision))],
    }
