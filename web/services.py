"""Service pages: applications and their services, instances updating live, scaling,
tearing down."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import BooleanField, FloatField, IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, NumberRange, Optional

from berth import db
from berth.errors import BerthError, InvalidInput
from berth.models import Application, Host, Release, Service
from berth.workloads import access, autoscaling, definitions, releases
from berth.workloads import services as workloads
from berth.workloads.definitions import MAX_REPLICAS
from web.api_v1 import ROW_ID
from web.api_v1.releases import ReleaseSchema
from web import topology
from web.pagination import page_of

blueprint = Blueprint("services", __name__, url_prefix="/services")


class ScaleForm(FlaskForm):
    replicas = IntegerField("Replicas", validators=[InputRequired(), NumberRange(0, MAX_REPLICAS)])


class AutoscalingForm(FlaskForm):
    enabled = BooleanField("Autoscale")
    min_replicas = IntegerField("Min", validators=[InputRequired(), NumberRange(1, MAX_REPLICAS)])
    max_replicas = IntegerField("Max", validators=[InputRequired(), NumberRange(1, MAX_REPLICAS)])
    target_cpu_percent = FloatField("Target CPU % of limit",
                                    validators=[InputRequired(), NumberRange(min=1, max=1000)])


class TeardownForm(FlaskForm):
    """No fields: the CSRF token is the point."""


def _viewed_service(app_name: str, service_name: str) -> Service:
    """The service, if the user may see its application (a member of its project)."""
    access.check_visible(current_user, definitions.get_application(app_name))
    return workloads.get_service(app_name, service_name)


def _operated_service(app_name: str, service_name: str) -> Service:
    """The service, if the user operates its application (its project's admins, developers)."""
    access.check_operator(current_user, definitions.get_application(app_name))
    return workloads.get_service(app_name, service_name)


@blueprint.app_context_processor
def _operator_test() -> dict:
    """`can_operate(application)` in templates: whether to show the buttons that change it."""
    return {"can_operate": lambda application: access.can_operate(current_user, application)}


APPLICATIONS_PER_PAGE = 20


@blueprint.get("/")
@login_required
def index():
    """One page of the applications the user may see, each with its services and project
    loaded in two queries for the page (not two per application)."""
    visible = access.visible_applications(current_user)
    page = page_of(db.session.scalar(select(func.count()).select_from(visible.subquery())),
                   APPLICATIONS_PER_PAGE)
    applications = db.session.scalars(
        visible.options(selectinload(Application.services), joinedload(Application.project))
        .limit(page.per_page).offset(page.offset)).all()
    return render_template("services/index.html", applications=applications, page=page,
                           topologies=topology.for_applications(applications),
                           page_url=lambda number: url_for("services.index", page=number),
                           teardown_form=TeardownForm())


@blueprint.post("/<app_name>/teardown")
@login_required
def teardown(app_name):
    application = access.check_operator(current_user, definitions.get_application(app_name))
    if not TeardownForm().validate_on_submit():
        flash("The form expired; try again.", "danger")
        return redirect(url_for(".index"))
    workloads.delete(application, actor=current_user.username)
    flash(f"Tearing down {app_name}: dependents stop first; it disappears from this list "
          f"when its last container is gone.", "info")
    return redirect(url_for(".index"))


def _instances_context(app_name: str, service_name: str) -> dict:
    service = _viewed_service(app_name, service_name)
    live = sorted((i for i in service.instances if i.state != "removed"),
                  key=lambda i: (i.slot, i.revision))
    hosts = {h.id: h.name for h in db.session.scalars(
        select(Host).where(Host.id.in_({i.host_id for i in live if i.host_id})))}
    return {"service": service, "instances": live, "hosts": hosts}


@blueprint.get("/<app_name>/<service_name>")
@login_required
def show(app_name, service_name):
    context = _instances_context(app_name, service_name)
    service = context["service"]
    form = ScaleForm(replicas=service.replicas)
    settings = autoscaling.settings_of(service)
    if service.autoscaling is None:  # a first policy: off until turned on, room for today's count
        settings.update(enabled=False, max_replicas=max(settings["max_replicas"], service.replicas))
    autoscaling_form = AutoscalingForm(data=settings)
    return render_template("services/show.html", form=form, autoscaling_form=autoscaling_form,
                           **context)


@blueprint.get("/<app_name>/<service_name>/instances")
@login_required
def instances(app_name, service_name):
    """The live part of the service page: htmx asks for it every two seconds."""
    return render_template("services/_instances.html", **_instances_context(app_name, service_name))


@blueprint.get(f"/<app_name>/<service_name>/instances/<{ROW_ID}:instance_id>/logs")
@login_required
def instance_logs(app_name, service_name, instance_id):
    """The last lines of an instance's log; the partial polls itself every two seconds."""
    from flask import abort, request

    from berth.models import ContainerInstance
    from berth.workloads import logs
    from web.hosts import engine_connect

    service = _viewed_service(app_name, service_name)
    instance = db.session.get(ContainerInstance, instance_id)
    if instance is None or instance.service_id != service.id:
        abort(404)
    since = request.args.get("since", type=float)
    name = instance.name
    found = logs.tail(instance, since=since, connect=engine_connect())
    return render_template("services/_logs.html", service=service, instance_id=instance_id,
                           instance_name=name, tail=found, since=since)


@blueprint.post("/<app_name>/<service_name>/scale")
@login_required
def scale(app_name, service_name):
    service = _operated_service(app_name, service_name)
    form = ScaleForm()
    if not form.validate_on_submit():
        flash(f"Replicas must be a whole number from 0 to {MAX_REPLICAS}.", "danger")
        return redirect(url_for(".show", app_name=app_name, service_name=service_name))
    try:
        workloads.scale(service, form.replicas.data, actor=current_user.username)
    except BerthError as error:
        db.session.rollback()
        flash(error.message, "danger")
    else:
        flash(f"Scaling {service_name} to {form.replicas.data}.", "info")
    return redirect(url_for(".show", app_name=app_name, service_name=service_name))


@blueprint.post("/<app_name>/<service_name>/autoscaling")
@login_required
def set_autoscaling(app_name, service_name):
    service = _operated_service(app_name, service_name)
    back = redirect(url_for(".show", app_name=app_name, service_name=service_name))
    form = AutoscalingForm()
    if not form.validate_on_submit():
        problems = [f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items()]
        flash("Autoscaling not changed. " + "; ".join(problems), "danger")
        return back
    try:
        autoscaling.set_policy(service, {
            "enabled": form.enabled.data, "min_replicas": form.min_replicas.data,
            "max_replicas": form.max_replicas.data,
            "target_cpu_percent": form.target_cpu_percent.data}, actor=current_user.username)
    except BerthError as error:
        db.session.rollback()
        flash(f"Autoscaling not changed: {error.message}", "danger")
    else:
        flash("Autoscaling " + ("on: the autoscaler now sets the replicas." if form.enabled.data
                                else "off."), "info")
    return back


class ReleaseForm(FlaskForm):
    """A new image, or an earlier revision (a rollback); the rest maps onto rollout.Settings,
    and a field left empty is its default."""

    image = StringField("New image")
    revision = IntegerField("or revision", validators=[Optional()])
    strategy = SelectField("Strategy", choices=["rolling", "canary", "blue_green"])
    batch = StringField("Batch", default="25%")
    max_surge = StringField("Max surge", default="25%")
    max_unavailable = StringField("Max unavailable", default="25%")
    canary_count = IntegerField("Canaries", validators=[Optional()])
    analysis_s = FloatField("Analysis (s)", validators=[Optional()])
    stages = StringField("Stages (JSON)", validators=[Optional()],
                         description='e.g. [{"pools": ["non-core"]}, {"pools": ["core"], "idc": "tucheng"}]')
    observe_s = FloatField("Observe between stages (s)", validators=[Optional()])

    def body(self) -> dict:
        """The release's body for berth.workloads.releases.start (which checks it all)."""
        body: dict = {"strategy": self.strategy.data}
        if self.revision.data is not None:
            body["revision"] = self.revision.data
        elif (self.image.data or "").strip():
            body["changes"] = {"image": self.image.data.strip()}
        for field in (self.batch, self.max_surge, self.max_unavailable):
            text = (field.data or "").strip()
            if text:
                body[field.name] = int(text) if text.isdigit() else text
        for field in (self.canary_count, self.analysis_s, self.observe_s):
            if field.data is not None:
                body[field.name] = field.data
        if (self.stages.data or "").strip():
            try:
                body["stages"] = json.loads(self.stages.data)
            except ValueError as error:
                raise InvalidInput(f"stages must be JSON, like "
                                   f'[{{"pools": ["core"], "idc": "tucheng"}}]: {error}') from None
        return body


class ReleaseActionForm(FlaskForm):
    """No fields: the CSRF token is the point."""


@blueprint.get("/<app_name>/<service_name>/releases")
@login_required
def release_page(app_name, service_name):
    """The release page: start a release, follow the one under way, and the history."""
    service = _viewed_service(app_name, service_name)
    history = db.session.scalars(select(Release).where(Release.service_id == service.id)
                                 .order_by(Release.id.desc()).limit(50)).all()
    released = next((r for r in service.revisions if r.number == service.revision), None)
    revisions = [(r, releases.diff(released, r) if released and r is not released else {})
                 for r in sorted(service.revisions, key=lambda r: -r.number)]
    return render_template("services/releases.html", service=service, history=history,
                           active=releases.active_release(service), form=ReleaseForm(),
                           action_form=ReleaseActionForm(), schema=ReleaseSchema(),
                           revisions=revisions)


@blueprint.post("/<app_name>/<service_name>/releases")
@login_required
def start_release(app_name, service_name):
    service = _operated_service(app_name, service_name)
    form = ReleaseForm()
    back = redirect(url_for(".release_page", app_name=app_name, service_name=service_name))
    if not form.validate_on_submit():
        flash("The form expired or is incomplete; try again.", "danger")
        return back
    try:
        release = releases.start(service, form.body(), actor=current_user.username,
                                 config=current_app.config["BERTH"])
    except BerthError as error:
        db.session.rollback()
        flash(error.message, "danger")
    else:
        flash(f"Release {release.id} started: revision {release.from_revision} to "
              f"{release.to_revision}.", "info")
    return back


@blueprint.post(f"/<app_name>/<service_name>/releases/<{ROW_ID}:release_id>/<action>")
@login_required
def act_on_release(app_name, service_name, release_id, action):
    service = _operated_service(app_name, service_name)
    back = redirect(url_for(".release_page", app_name=app_name, service_name=service_name))
    if not ReleaseActionForm().validate_on_submit():
        flash("The form expired; try again.", "danger")
        return back
    try:
        releases.act(service, releases.get_release(service, release_id), action,
                     actor=current_user.username)
    except BerthError as error:
        db.session.rollback()
        flash(error.message, "danger")
    else:
        flash(f"{action} asked of release {release_id}.", "info")
    return back
