"""Project pages: the projects list, a project's members, robots, repositories and tags."""
from __future__ import annotations

from flask import (Blueprint, current_app, flash, make_response, redirect, render_template,
                   url_for)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, HiddenField, SelectField, StringField
from wtforms.validators import AnyOf, DataRequired, Length

from berth import db
from berth.errors import BerthError, Forbidden
from berth.models import Application, Membership, Project, Repository
from berth.models.projects import ROLES
from berth.projects import catalogue
from berth.projects import services as projects
from berth.workloads import quotas

blueprint = Blueprint("projects", __name__, url_prefix="/projects")

# Every POST here is CSRF-checked by CSRFProtect before the view runs (400 without the
# token); button-only forms carry just the token.


class NewProjectForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    public = BooleanField("Public (anyone logged in may pull)")


class VisibilityForm(FlaskForm):
    visibility = HiddenField(validators=[AnyOf(["public", "private"])])


class AddMemberForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    role = SelectField("Role", choices=list(ROLES), default="developer")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=list(ROLES))


class RobotForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    can_push = BooleanField("May push (otherwise pull only)")


def _user():
    return current_user._get_current_object()


def _registry_host() -> str:
    return getattr(current_app.config["BERTH"], "registry_host", None) or "<registry>"


def _to_show(project: Project):
    return redirect(url_for("projects.show", name=project.name))


def _failed(error: BerthError, project: Project):
    """A button's action was refused: drop any half-made change, say why, go back.
    Permission refusals stay a 403 page: the page offers no such button to those users."""
    if isinstance(error, Forbidden):
        raise error
    db.session.rollback()
    flash(error.message, "danger")
    return redirect(url_for("projects.show", name=project.name))


# The list

def _render_index(form: NewProjectForm, status: int = 200):
    user = _user()
    visible = projects.visible_projects(user)
    roles = dict(db.session.execute(select(Membership.project_id, Membership.role).where(
        Membership.user_id == user.id)).all())
    counts = dict(db.session.execute(select(Repository.project_id, func.count()).group_by(
        Repository.project_id)).all())
    rows = [(p, roles.get(p.id), counts.get(p.id, 0)) for p in visible]
    return render_template("projects/index.html", rows=rows, form=form), status


@blueprint.get("/")
@login_required
def index():
    return _render_index(NewProjectForm())


@blueprint.post("/")
@login_required
def create():
    form = NewProjectForm()
    if not form.validate_on_submit():
        return _render_index(form, 400)
    try:
        project = projects.create_project(form.name.data.strip(), public=form.public.data,
                                          actor=_user())
    except BerthError as error:
        if isinstance(error, Forbidden):
            raise
        db.session.rollback()
        form.name.errors.append(error.message)
        return _render_index(form, error.status)
    flash(f"Project {project.name} created.", "success")
    return _to_show(project)


# One project

def _render_show(project: Project, *, status: int = 200, member_form: AddMemberForm | None = None,
                 robot_form: RobotForm | None = None, new_robot: tuple[str, str] | None = None):
    user = _user()
    manage = projects.can_manage(user, project)
    repositories = [(repository, repository.name.partition("/")[2], catalogue.tags(repository))
                    for repository in catalogue.repositories(project)]
    return render_template(
        "projects/show.html",
        project=project,
        role=projects.role_of(user, project),
        manage=manage,
        change_images=projects.can_change_images(user, project),
        members=projects.members(project),
        robots=[(robot, projects.robot_username(project, robot.name))
                for robot in projects.robots(project)] if manage else [],
        repositories=repositories,
        roles=ROLES,
        registry_host=_registry_host(),
        member_form=member_form or AddMemberForm(formdata=None),
        robot_form=robot_form or RobotForm(formdata=None),
        new_robot=new_robot,
        usage=quotas.usage(project), quota=quotas.Quota.of(project),
        applications=sorted(a.name for a in db.session.scalars(
            select(Application).where(Application.project_id == project.id))),
    ), status


@blueprint.get("/<name>")
@login_required
def show(name: str):
    return _render_show(projects.get_visible_project(name, _user()))


@blueprint.post("/<name>/visibility")
@login_required
def visibility(name: str):
    project = projects.get_visible_project(name, _user())
    form = VisibilityForm()
    if not form.validate_on_submit():
        flash("Choose public or private.", "danger")
        return _to_show(project)
    public = form.visibility.data == "public"
    try:
        projects.set_public(project, public, actor=_user())
    except BerthError as error:
        return _failed(error, project)
    flash(f"{project.name} is now {'public' if public else 'private'}.", "success")
    return _to_show(project)


# Members

@blueprint.post("/<name>/members")
@login_required
def add_member(name: str):
    project = projects.get_visible_project(name, _user())
    form = AddMemberForm()
    if not form.validate_on_submit():
        return _render_show(project, status=400, member_form=form)
    username = form.username.data.strip()
    try:
        projects.add_member(project, username, form.role.data, actor=_user())
    except BerthError as error:
        if isinstance(error, Forbidden):
            raise
        db.session.rollback()
        form.username.errors.append(error.message)
        return _render_show(project, status=error.status, member_form=form)
    flash(f"{username} joined {project.name} as {form.role.data}.", "success")
    return _to_show(project)


@blueprint.post("/<name>/members/<username>/role")
@login_required
def change_role(name: str, username: str):
    project = projects.get_visible_project(name, _user())
    form = RoleForm()
    if not form.validate_on_submit():
        flash(f"Choose a role: {', '.join(ROLES)}.", "danger")
        return _to_show(project)
    try:
        projects.change_role(project, username, form.role.data, actor=_user())
    except BerthError as error:
        return _failed(error, project)
    flash(f"{username} is now {form.role.data} of {project.name}.", "success")
    return _to_show(project)


@blueprint.post("/<name>/members/<username>/remove")
@login_required
def remove_member(name: str, username: str):
    project = projects.get_visible_project(name, _user())
    try:
        projects.remove_member(project, username, actor=_user())
    except BerthError as error:
        return _failed(error, project)
    flash(f"{username} was removed from {project.name}.", "success")
    return _to_show(project)


# Robot accounts

@blueprint.post("/<name>/robots")
@login_required
def create_robot(name: str):
    """The secret is shown in this response only: rendered here (201), never redirected,
    never put in the session, and the response may not be cached."""
    project = projects.get_visible_project(name, _user())
    form = RobotForm()
    if not form.validate_on_submit():
        return _render_show(project, status=400, robot_form=form)
    try:
        robot, secret = projects.create_robot(project, form.name.data.strip(),
                                              can_push=form.can_push.data, actor=_user())
    except BerthError as error:
        if isinstance(error, Forbidden):
            raise
        db.session.rollback()
        form.name.errors.append(error.message)
        return _render_show(project, status=error.status, robot_form=form)
    db.session.flush()
    response = make_response(_render_show(
        project, status=201, new_robot=(projects.robot_username(project, robot.name), secret)))
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/<name>/robots/<robot>/revoke")
@login_required
def revoke_robot(name: str, robot: str):
    project = projects.get_visible_project(name, _user())
    try:
        projects.revoke_robot(project, robot, actor=_user())
    except BerthError as error:
        return _failed(error, project)
    flash(f"Robot {projects.robot_username(project, robot)} is revoked.", "success")
    return _to_show(project)


# Images

@blueprint.post("/<name>/repositories/<path:repository>/tags/<tag>/delete")
@login_required
def delete_tag(name: str, repository: str, tag: str):
    """`repository` is the path inside the project: /projects/shop/repositories/web/... is
    shop/web."""
    from berth.projects import registry_ops

    user = _user()
    project = projects.get_visible_project(name, user)
    if not projects.can_change_images(user, project):
        raise Forbidden(f"only admins and developers of {project.name} may delete images")
    full_name = f"{project.name}/{repository}"
    try:
        registry_ops.delete_tag(project, full_name, tag, actor=user)
    except BerthError as error:
        return _failed(error, project)
    flash(f"Deleted {full_name}:{tag} (and every tag on the same digest).", "success")
    return _to_show(project)


# Template helpers

@blueprint.app_template_filter("short_digest")
def short_digest(digest: str | None) -> str:
    if not digest:
        return "—"
    algorithm, _, hexes = digest.partition(":")
    return f"{algorithm}:{hexes[:12]}" if hexes else digest[:19]


@blueprint.app_template_filter("human_size")
def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"
