"""HTML pages that span areas: the overview dashboard."""
from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import func, select

from berth import db
from berth.models import Event, Host

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
@login_required
def dashboard():
    by_liveness = dict(db.session.execute(
        select(Host.liveness, func.count()).group_by(Host.liveness)).all())
    events = db.session.scalars(select(Event).order_by(Event.id.desc()).limit(20)).all()
    return render_template("dashboard.html", hosts=by_liveness, events=events)
