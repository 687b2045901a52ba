"""HTML pages that span areas: the overview dashboard."""
from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from berth import db
from berth.models import Host, Service
from web.events import events_for

blueprint = Blueprint("pages", __name__)


def _overview() -> dict:
    by_liveness = dict(db.session.execute(
        select(Host.liveness, func.count()).group_by(Host.liveness)).all())
    by_status = dict(db.session.execute(
        select(Service.status, func.count()).group_by(Service.status)).all())
    healthy = by_status.pop("healthy", 0)
    # The same rule as /events: a user sees only events about what they may see (a private
    # project's creation told its name to everyone before).
    events = events_for(current_user, limit=20)
    return {"hosts": by_liveness, "services_healthy": healthy,
            "services_degraded": sum(by_status.values()), "events": events}


@blueprint.get("/")
@login_required
def dashboard():
    return render_template("dashboard.html", **_overview())


@blueprint.get("/overview")
@login_required
def overview():
    """The dashboard's body; htmx refreshes it every 10 seconds."""
    return render_template("_overview.html", **_overview())
