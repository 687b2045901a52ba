"""The application editor: a Compose file, checked before anything is saved (the start order
of its services, where new containers would go and why, or the first field Berth cannot
take), then deployed, or applied to the application it edits. For its project's admins and
developers."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, TextAreaField
from wtforms.validators import InputRequired

from berth import db
from berth.errors import BerthError
from berth.models import Membership, Project
from berth.workloads import access, apply, compose, definitions
from berth.workloads import services as workloads
from berth.workloads.compose_export import to_compose

blueprint = Blueprint("editor", __name__, url_prefix="/applications")

EXAMPLE = """name: hello
services:
  web:
    image: 127.0.0.1:5000/library/busybox:1
    # Berth picks the host port and passes it as $PORT (write $$PORT in Compose)
    command: ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 127.0.0.1:$$PORT -h /www"]
    ports: ["80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$$PORT/"]
      interval: 1s
    deploy:
      replicas: 2
      resources: {limits: {cpus: "0.1", memory: 32M}}
"""


class EditorForm(FlaskForm):
    compose = TextAreaField("Compose file", validators=[InputRequired()])
    project = SelectField("Project", choices=[])


def _projects() -> list[str]:
    """The projects the user may define applications in."""
    if current_user.is_admin:
        names = list(db.session.scalars(select(Project.name).order_by(Project.name)))
        return names if access.DEFAULT_PROJECT in names else [access.DEFAULT_PROJECT, *names]
    return list(db.session.scalars(select(Project.name).join(Membership).where(
        Membership.user_id == current_user.id, Membership.role.in_(access.OPERATE_ROLES))
        .order_by(Project.name)))


@blueprint.route("/new", methods=["GET", "POST"])
@login_required
def new():
    form = EditorForm()
    form.project.choices = _projects()
    if request.method == "GET":
        form.compose.data = EXAMPLE
        return render_template("editor/edit.html", form=form, application=None, result=None)
    result, status = None, 200
    if not form.validate_on_submit():
        flash("The form expired or is empty; try again.", "danger")
        return render_template("editor/edit.html", form=form, application=None, result=None), 400
    try:
        raw = compose.parse(form.compose.data, project=form.project.data or None)
        config = current_app.config["BERTH"]
        if request.form.get("action") == "save":
            project = access.project_for_new(current_user, raw.get("project"))
            application = workloads.deploy(raw, actor=current_user.username, config=config,
                                           project=project)
            db.session.flush()
            flash(f"Application {application.name} defined in project {project.name}: its "
                  f"services start in dependency order.", "info")
            return redirect(url_for("services.index") + f"#{application.name}")
        result = apply.plan_new(raw, config=config, dry_run=True)
    except BerthError as error:
        db.session.rollback()
        result, status = {"error": error.message}, error.status
    return render_template("editor/edit.html", form=form, application=None, result=result), status


@blueprint.route("/<app_name>/edit", methods=["GET", "POST"])
@login_required
def edit(app_name):
    application = access.check_operator(current_user, definitions.get_application(app_name))
    form = EditorForm()
    form.project.choices = [application.project.name]
    if request.method == "GET":
        form.compose.data, form.project.data = to_compose(application), application.project.name
        return render_template("editor/edit.html", form=form, application=application, result=None)
    if not form.validate_on_submit():
        flash("The form expired or is empty; try again.", "danger")
        return render_template("editor/edit.html", form=form, application=application,
                               result=None), 400
    result, status = None, 200
    saving = request.form.get("action") == "save"
    try:
        raw = compose.parse(form.compose.data, name=application.name,
                            project=application.project.name)
        result = apply.apply_existing(application, raw, actor=current_user.username,
                                      config=current_app.config["BERTH"], dry_run=not saving)
        if saving:
            changed = ", ".join(c["service"] for c in result["changed"]) or "nothing"
            flash(f"Applied to {application.name}: {changed} changed.", "info")
            return redirect(url_for("services.index") + f"#{application.name}")
    except BerthError as error:
        db.session.rollback()
        result, status = {"error": error.message}, error.status
    return render_template("editor/edit.html", form=form, application=application,
                           result=result), status
