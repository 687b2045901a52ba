"""Who may see and operate an application: its project's admins and developers operate it
(deploy, scale, release, autoscaling, teardown), its guests see it, system administrators
do everything; to anybody else it does not exist (404, as a private project does)."""
from __future__ import annotations

from sqlalchemy import Select, select

from berth import db
from berth.errors import Forbidden, InvalidInput, NotFound
from berth.models import Application, Membership, Project, User
from berth.projects.services import find_project, role_of

DEFAULT_PROJECT = "default"  # where a system admin's applications go when none is named
OPERATE_ROLES = ("admin", "developer")


def role(user: User | None, application: Application) -> str | None:
    if user is None:
        return None
    if user.is_admin:
        return "admin"
    return role_of(user, application.project)


def check_visible(user: User | None, application: Application) -> Application:
    if role(user, application) is None:
        raise NotFound(f"no application {application.name!r}")
    return application


def check_operator(user: User | None, application: Application) -> Application:
    check_visible(user, application)
    found = role(user, application)
    if found not in OPERATE_ROLES:
        raise Forbidden(f"you are a {found} of project {application.project.name}: only its "
                        f"admins and developers change application {application.name}")
    return application


def can_operate(user: User | None, application: Application) -> bool:
    return role(user, application) in OPERATE_ROLES


def visible_applications(user: User) -> Select:
    query = select(Application).order_by(Application.name)
    if user.is_admin:
        return query
    return query.where(Application.project_id.in_(
        select(Membership.project_id).where(Membership.user_id == user.id)))


def project_for_new(user: User, name: object) -> Project:
    """The project a new application of `user`'s goes in: the one named, where they are an
    admin or developer; unnamed, their only such project (a system admin's: `default`)."""
    if name is not None:
        if not isinstance(name, str) or not name:
            raise InvalidInput("project must be the name of a project")
        project = find_project(name)
        if project is None or not (user.is_admin or role_of(user, project) is not None):
            raise NotFound(f"no project {name!r}")
        if not (user.is_admin or role_of(user, project) in OPERATE_ROLES):
            raise Forbidden(f"you are a guest of project {name}: only its admins and developers "
                            f"define applications in it")
        return project
    if user.is_admin:
        return project_for_new_by_default()
    operated = list(db.session.scalars(select(Project).join(Membership).where(
        Membership.user_id == user.id, Membership.role.in_(OPERATE_ROLES)).order_by(Project.name)))
    if len(operated) != 1:
        raise InvalidInput("say which project the application belongs to (project: ...): you "
                           + (f"operate {', '.join(p.name for p in operated)}" if operated
                              else "are an admin or developer of no project"))
    return operated[0]


def project_for_new_by_default() -> Project:
    """The default project (made on first use), for applications nobody placed in one."""
    project = find_project(DEFAULT_PROJECT)
    if project is None:
        project = Project(name=DEFAULT_PROJECT, public=False)
        db.session.add(project)
        db.session.flush()
    return project
