"""The alerts page: what fires now and what fired lately (about what the user may see), and
Alertmanager's silences when it is configured; and the thresholds form the service page
includes (templates/alerts/_thresholds.html)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, FloatField, HiddenField, IntegerField
from wtforms.validators import DataRequired, NumberRange, Optional

from berth import db
from berth.errors import BerthError, Forbidden
from berth.models import Application
from berth.models.alerts import AlertNotification
from berth.monitoring import alerts
from berth.monitoring.alertmanager import AlertmanagerClient, AlertmanagerError
from berth.workloads import access, definitions
from berth.workloads import services as workloads

blueprint = Blueprint("alerts", __name__, url_prefix="/alerts")

MAX_SILENCE_HOURS = 24 * 14


class SilenceForm(FlaskForm):
    fingerprint = HiddenField(validators=[DataRequired()])
    hours = IntegerField("Hours", default=2,
                         validators=[DataRequired(), NumberRange(min=1, max=MAX_SILENCE_HOURS)])


class ExpireForm(FlaskForm):
    """No fields: the CSRF token is the point."""


class ThresholdsForm(FlaskForm):
    p999_s = FloatField("P999 above (s)", validators=[
        Optional(), NumberRange(min=0.001, max=alerts.MAX_P999_S)])
    error_percent = FloatField("Errors above (%)", validators=[
        Optional(), NumberRange(min=0.01, max=100)])
    enabled = BooleanField("Alert on this service", default=True)


def alertmanager() -> AlertmanagerClient | None:
    url = current_app.config["BERTH"].alertmanager_url
    return AlertmanagerClient(url) if url else None


def may_silence(labels: dict) -> bool:
    """Operators of the application the alert is about; system admins for the rest."""
    if current_user.is_admin:
        return True
    if not labels.get("application"):
        return False
    application = db.session.scalar(select(Application).where(
        Application.name == labels["application"]))
    return application is not None and access.can_operate(current_user, application)


@blueprint.get("/")
@login_required
def index():
    rows = [r for r in alerts.recent(db.session) if alerts.may_see(current_user, r.labels,
                                                                   db.session)]
    silences, problem, client = [], None, alertmanager()
    if client is not None:
        try:
            silences = [s for s in client.silences()
                        if s.get("status", {}).get("state") in ("active", "pending")
                        and may_silence({m["name"]: m["value"] for m in s.get("matchers", [])})]
        except AlertmanagerError as error:
            problem = str(error)
    return render_template("alerts/index.html", firing=alerts.firing(rows), recent=rows,
                           silences=silences, alertmanager_configured=client is not None,
                           problem=problem, silence_form=SilenceForm(), expire_form=ExpireForm(),
                           may_silence=may_silence)


@blueprint.post("/silences")
@login_required
def silence():
    form, client = SilenceForm(), alertmanager()
    back = redirect(url_for(".index"))
    if client is None:
        flash("Alertmanager is not configured (BERTH_ALERTMANAGER_URL).", "danger")
        return back
    if not form.validate_on_submit():
        flash(f"Silence for 1 to {MAX_SILENCE_HOURS} whole hours.", "danger")
        return back
    row = db.session.scalar(select(AlertNotification).where(
        AlertNotification.fingerprint == form.fingerprint.data).limit(1))
    if row is None or not alerts.may_see(current_user, row.labels, db.session):
        flash("No such alert.", "danger")
        return back
    if not may_silence(row.labels):
        raise Forbidden("only the operators of an application silence its alerts (system "
                        "administrators silence host and project alerts)")
    try:
        client.create_silence(row.labels, form.hours.data, created_by=current_user.username,
                              comment="silenced from Berth's alerts page")
    except AlertmanagerError as error:
        flash(f"Not silenced: {error}", "danger")
    else:
        flash(f"{row.alertname} silenced for {form.hours.data} h.", "info")
    return back


@blueprint.post("/silences/<silence_id>/expire")
@login_required
def expire(silence_id):
    client, back = alertmanager(), redirect(url_for(".index"))
    if client is None or not ExpireForm().validate_on_submit():
        flash("Alertmanager is not configured, or the form expired.", "danger")
        return back
    try:
        found = next((s for s in client.silences() if s.get("id") == silence_id), None)
        if found is None:
            flash("No such silence.", "danger")
            return back
        if not may_silence({m["name"]: m["value"] for m in found.get("matchers", [])}):
            raise Forbidden("only who may silence these alerts may expire the silence")
        client.expire_silence(silence_id)
    except AlertmanagerError as error:
        flash(f"Not expired: {error}", "danger")
    else:
        flash("Silence expired.", "info")
    return back


def thresholds_context(service) -> dict:
    """What templates/alerts/_thresholds.html needs: `{% include %}` it with these."""
    current = alerts.thresholds(db.session, service, current_app.config["BERTH"])
    form = ThresholdsForm(data={
        "p999_s": current["p999_s"] if current["custom"] else None,
        "error_percent": current["error_ratio"] * 100 if current["custom"] else None,
        "enabled": current["enabled"]})
    return {"alert_thresholds": current, "thresholds_form": form, "thresholds_service": service}


@blueprint.app_context_processor
def _thresholds_helper() -> dict:
    return {"alert_thresholds_context": thresholds_context}


@blueprint.post("/thresholds/<app_name>/<service_name>")
@login_required
def set_thresholds(app_name, service_name):
    access.check_operator(current_user, definitions.get_application(app_name))
    service = workloads.get_service(app_name, service_name)
    back = redirect(url_for("services.show", app_name=app_name, service_name=service_name))
    form = ThresholdsForm()
    if not form.validate_on_submit():
        problems = [f"{form[name].label.text}: {' '.join(errors)}"
                    for name, errors in form.errors.items()]
        flash("Alert thresholds not changed. " + "; ".join(problems), "danger")
        return back
    try:
        alerts.set_thresholds(db.session, service, p999_s=form.p999_s.data,
                              error_ratio=(form.error_percent.data / 100
                                           if form.error_percent.data is not None else None),
                              enabled=bool(form.enabled.data))
    except BerthError as error:
        db.session.rollback()
        flash(f"Alert thresholds not changed: {error.message}", "danger")
        return back
    from web.api_v1.alerts import rerender_rules

    rerender_rules()
    flash("Alert thresholds saved; Prometheus gets the new rules shortly.", "info")
    return back
