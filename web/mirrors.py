"""The mirrors page for system administrators: the registries with their health and lag,
"sync now", the sync jobs live (an htmx partial every 2 s), adding a mirror, and the
replication policies. Everything goes through registry_sync's service functions."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from berth import db
from berth.errors import BerthError, Forbidden
from registry_sync import jobs, lag, policies, registries
from web.api_v1 import ROW_ID

blueprint = Blueprint("mirrors", __name__, url_prefix="/mirrors")

JOBS_SHOWN = 20  # recent jobs in the partial, besides the running ones
LIVE = ("queued", "running")


def _admin():
    user = current_user._get_current_object()
    if not user.is_admin:
        raise Forbidden("only system administrators manage registry mirrors")
    return user


def _probe() -> registries.Probe:
    """Tests put a fake in app.config["BERTH_REGISTRY_PROBE"], as the API does."""
    return current_app.config.get("BERTH_REGISTRY_PROBE") or registries.http_probe


class MirrorForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    url = StringField("URL", validators=[DataRequired(), Length(max=255)])
    idc = StringField("IDC", validators=[Optional(), Length(max=64)])
    tls_verify = BooleanField("Verify TLS", default=True)


class PolicyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    projects = StringField("Projects", default="*", validators=[DataRequired(), Length(max=255)])
    repositories = StringField("Repositories", default="*",
                               validators=[DataRequired(), Length(max=255)])
    tags = StringField("Tags", default="*", validators=[DataRequired(), Length(max=255)])
    tags_regex = BooleanField("Tags is a regex")
    mirrors = SelectMultipleField("Mirrors", choices=[])
    on_push = BooleanField("On push", default=True)
    propagate_deletes = BooleanField("Propagate deletes")


class ActionForm(FlaskForm):
    """The buttons (sync, cancel, delete): nothing but the CSRF token."""


def _policy_form(**kwargs) -> PolicyForm:
    form = PolicyForm(**kwargs)
    form.mirrors.choices = [(r.name, r.name) for r in registries.list_registries()
                            if r.role == "mirror"]
    return form


def _jobs_context() -> dict:
    running = jobs.running_jobs()
    ids = {job.id for job in running}
    recent = [job for job in jobs.recent_jobs(JOBS_SHOWN) if job.id not in ids]
    return dict(jobs=running + recent, live=LIVE)


def _render(mirror_form: MirrorForm | None = None, policy_form: PolicyForm | None = None,
            status: int = 200):
    rows = [(r, lag.lag(r) if r.role == "mirror" else None)
            for r in registries.list_registries()]
    return render_template(
        "mirrors/index.html", rows=rows, policies=policies.list_policies(),
        mirror_form=mirror_form or MirrorForm(formdata=None),
        policy_form=policy_form or _policy_form(formdata=None), **_jobs_context()), status


@blueprint.get("/")
@login_required
def index():
    _admin()
    return _render()


@blueprint.get("/jobs")
@login_required
def jobs_part():
    """The jobs alone, for htmx to swap in every 2 s."""
    _admin()
    return render_template("mirrors/_jobs.html", **_jobs_context())


@blueprint.post("/<name>/sync")
@login_required
def sync(name: str):
    user = _admin()
    if not ActionForm().validate_on_submit():
        flash("The form expired: try again.", "danger")
        return redirect(url_for("mirrors.index"))
    try:
        registry = registries.get_registry(name)
        job = jobs.request_sync(registry, trigger="manual", actor=user.username)
        db.session.flush()
    except BerthError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for("mirrors.index"))
    flash(f"Sync job {job.id} for {registry.name} is queued.", "success")
    return redirect(url_for("mirrors.index"))


@blueprint.post(f"/jobs/<{ROW_ID}:job_id>/cancel")
@login_required
def cancel(job_id: int):
    user = _admin()
    if not ActionForm().validate_on_submit():
        flash("The form expired: try again.", "danger")
        return redirect(url_for("mirrors.index"))
    try:
        job = jobs.cancel(job_id, actor=user.username)
    except BerthError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for("mirrors.index"))
    flash(f"Sync job {job_id} is cancelled." if job.status == "cancelled" else
          f"Sync job {job_id} stops after its current step.", "success")
    return redirect(url_for("mirrors.index"))


@blueprint.post("/new")
@login_required
def new():
    """Add a mirror once it answers GET /v2/; a 400 with the form as typed if it does not."""
    user = _admin()
    form = MirrorForm()
    if not form.validate_on_submit():
        return _render(mirror_form=form, status=400)
    try:
        registry = registries.add_registry(
            form.name.data.strip(), form.url.data.strip(), idc=(form.idc.data or "").strip() or None,
            tls_verify=form.tls_verify.data, actor=user.username, probe=_probe())
        db.session.flush()
    except BerthError as error:
        db.session.rollback()
        form.url.errors.append(error.message)
        return _render(mirror_form=form, status=400)
    flash(f"Mirror {registry.name} added: it answered at {registry.url}.", "success")
    return redirect(url_for("mirrors.index"))


@blueprint.post("/<name>/remove")
@login_required
def remove(name: str):
    user = _admin()
    if ActionForm().validate_on_submit():
        try:
            registries.remove_registry(name, actor=user.username)
            flash(f"Mirror {name} removed.", "success")
        except BerthError as error:
            db.session.rollback()
            flash(error.message, "danger")
    return redirect(url_for("mirrors.index"))


@blueprint.post("/policies")
@login_required
def add_policy():
    user = _admin()
    form = _policy_form()
    if not form.validate_on_submit():
        return _render(policy_form=form, status=400)
    raw = {"name": form.name.data.strip(), "projects": form.projects.data.strip(),
           "repositories": form.repositories.data.strip(), "tags": form.tags.data.strip(),
           "tags_regex": form.tags_regex.data, "mirrors": list(form.mirrors.data or []),
           "on_push": form.on_push.data, "propagate_deletes": form.propagate_deletes.data}
    try:
        policy = policies.create_policy(raw, actor=user.username)
        db.session.flush()
    except BerthError as error:
        db.session.rollback()
        _field_of(form, error.message).errors.append(error.message)
        return _render(policy_form=form, status=400)
    if not policies.matching_tags(policy):
        flash(f"Policy {policy.name} is saved, but it matches no tag in the catalogue: "
              "check its patterns.", "warning")
    else:
        flash(f"Policy {policy.name} added.", "success")
    return redirect(url_for("mirrors.index"))


def _field_of(form: PolicyForm, message: str):
    """The field a service refusal concerns (its messages start with the field's name)."""
    if message.startswith(("mirrors", "no such mirror")):
        return form.mirrors
    for field in (form.projects, form.repositories, form.tags, form.tags_regex):
        if message.startswith(field.name):
            return field
    return form.name


@blueprint.post("/policies/<name>/delete")
@login_required
def delete_policy(name: str):
    user = _admin()
    if ActionForm().validate_on_submit():
        try:
            policies.delete_policy(name, actor=user.username)
            flash(f"Policy {name} deleted.", "success")
        except BerthError as error:
            db.session.rollback()
            flash(error.message, "danger")
    return redirect(url_for("mirrors.index"))


# Template helpers, for this blueprint's templates only

@blueprint.context_processor
def _helpers():
    return dict(size=size, percent=percent)


def size(value: int | None) -> str:
    if not value:
        return "0 B"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def percent(part: float, whole: float | None) -> int:
    return 0 if not whole else min(100, round(100 * part / whole))
