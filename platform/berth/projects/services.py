"""Project, membership and robot-account service functions, with their permission rules.

Rules: system admins create projects; a project admin (or a system admin) manages members
and robots; the last admin of a project can be neither removed nor demoted; outsiders get
404 for private projects so their existence does not leak.
"""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, select

from berth import accounts, audit, db
from berth.clock import utcnow
from berth.errors import Conflict, Forbidden, InvalidInput, NotFound
from berth.models import Membership, Project, RobotAccount, User
from berth.models.projects import ROLES
from berth.registry_auth.names import validate_project_name

ROBOT_PREFIX = "robot$"
MANAGE_ROLES = ("admin",)
CHANGE_IMAGE_ROLES = ("admin", "developer")


def _invalid(error: ValueError) -> InvalidInput:
    return InvalidInput(str(error))


def find_project(name: str) -> Project | None:
    return db.session.scalar(select(Project).where(Project.name == name))


def role_of(user: User | None, project: Project) -> str | None:
    if user is None:
        return None
    return db.session.scalar(select(Membership.role).where(
        Membership.project_id == project.id, Membership.user_id == user.id))


def can_view(user: User | None, project: Project) -> bool:
    return project.public or (user is not None and (user.is_admin or role_of(user, project) is not None))


def can_manage(user: User, project: Project) -> bool:
    return user.is_admin or role_of(user, project) in MANAGE_ROLES


def can_change_images(user: User, project: Project) -> bool:
    return user.is_admin or role_of(user, project) in CHANGE_IMAGE_ROLES


def get_visible_project(name: str, user: User | None) -> Project:
    """The project, or NotFound for outsiders of a private one (no leak of existence)."""
    project = find_project(name)
    if project is None or not can_view(user, project):
        raise NotFound(f"no project named {name!r}")
    return project


def visible_projects(user: User) -> list[Project]:
    query = select(Project).order_by(Project.name)
    if not user.is_admin:
        member_of = select(Membership.project_id).where(Membership.user_id == user.id)
        query = query.where(Project.public | Project.id.in_(member_of))
    return list(db.session.scalars(query))


def _require_manage(actor: User, project: Project) -> None:
    if not can_manage(actor, project):
        raise Forbidden(f"only admins of project {project.name} may manage its members and robots")


def create_project(name: str, *, public: bool, actor: User, admin: User | None = None) -> Project:
    """System admins create projects; `admin` (default: the creator) is its first admin."""
    if not actor.is_admin:
        raise Forbidden("only system administrators may create projects")
    try:
        validate_project_name(name)
    except ValueError as error:
        raise _invalid(error) from error
    if find_project(name) is not None:
        raise Conflict(f"project {name!r} already exists")
    project = Project(name=name, public=bool(public))
    db.session.add(project)
    first_admin = admin or actor
    db.session.add(Membership(project=project, user_id=first_admin.id, role="admin"))
    audit.record("project.create", f"created project {name} ({'public' if public else 'private'})",
                 subject_type="project", subject=name, actor=actor.username,
                 public=bool(public), admin=first_admin.username)
    return project


def set_public(project: Project, public: bool, *, actor: User) -> None:
    _require_manage(actor, project)
    if project.public != public:
        project.public = public
        audit.record("project.visibility", f"{project.name} is now {'public' if public else 'private'}",
                     subject_type="project", subject=project.name, actor=actor.username)


def delete_project(project: Project, *, actor: User) -> None:
    if not actor.is_admin:
        raise Forbidden("only system administrators may delete projects")
    if project.repositories:
        raise Conflict(f"project {project.name} still has repositories; delete them first")
    from berth.models import Application

    owned = db.session.scalars(select(Application.name).where(Application.project_id == project.id)).all()
    if owned:
        raise Conflict(f"project {project.name} still has applications ({', '.join(sorted(owned))}); "
                       f"tear them down first")
    audit.record("project.delete", f"deleted project {project.name}", subject_type="project",
                 subject=project.name, actor=actor.username)
    db.session.delete(project)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")


def _member(project: Project, username: str) -> Membership:
    membership = db.session.scalar(select(Membership).join(User).where(
        Membership.project_id == project.id, User.username == username))
    if membership is None:
        raise NotFound(f"{username!r} is not a member of project {project.name}")
    return membership


def members(project: Project) -> list[Membership]:
    return list(db.session.scalars(select(Membership).join(User).where(
        Membership.project_id == project.id).order_by(User.username)))


def _admin_count(project: Project) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.project_id == project.id, Membership.role == "admin"))


def add_member(project: Project, username: str, role: str, *, actor: User) -> Membership:
    _require_manage(actor, project)
    _check_role(role)
    user = accounts.find_user(username)
    if user is None:
        raise InvalidInput(f"unknown user {username!r}: create the user first")
    if role_of(user, project) is not None:
        raise Conflict(f"{username!r} is already a member of {project.name}; change the role instead")
    membership = Membership(project=project, user_id=user.id, role=role)
    db.session.add(membership)
    audit.record("member.add", f"{username} joined {project.name} as {role}",
                 subject_type="project", subject=project.name, actor=actor.username,
                 member=username, role=role)
    return membership


def change_role(project: Project, username: str, role: str, *, actor: User) -> Membership:
    _require_manage(actor, project)
    _check_role(role)
    membership = _member(project, username)
    if membership.role == role:
        return membership
    if membership.role == "admin" and _admin_count(project) == 1:
        raise Conflict(f"{username} is the last admin of {project.name}; make another member "
                       "admin first")
    audit.record("member.role", f"{username} in {project.name}: {membership.role} -> {role}",
                 subject_type="project", subject=project.name, actor=actor.username,
                 member=username, role=role, previous=membership.role)
    membership.role = role
    return membership


def remove_member(project: Project, username: str, *, actor: User) -> None:
    _require_manage(actor, project)
    membership = _member(project, username)
    if membership.role == "admin" and _admin_count(project) == 1:
        raise Conflict(f"{username} is the last admin of {project.name} and cannot be removed")
    audit.record("member.remove", f"{username} left {project.name}", subject_type="project",
                 subject=project.name, actor=actor.username, member=username,
                 role=membership.role)
    db.session.delete(membership)


# Robot accounts: machine credentials for one project. The secret is long and random,
# so a fast hash is enough, and it is shown once.

def robot_username(project: Project, name: str) -> str:
    return f"{ROBOT_PREFIX}{project.name}+{name}"


def _secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_robot(project: Project, name: str, *, can_push: bool, actor: User) -> tuple[RobotAccount, str]:
    _require_manage(actor, project)
    try:
        validate_project_name(name)  # the same simple component grammar
    except ValueError as error:
        raise InvalidInput(f"invalid robot name: {error}") from error
    exists = db.session.scalar(select(RobotAccount).where(
        RobotAccount.project_id == project.id, RobotAccount.name == name))
    if exists is not None:
        raise Conflict(f"robot {name!r} already exists in {project.name}")
    secret = secrets.token_urlsafe(32)
    robot = RobotAccount(project=project, name=name, secret_hash=_secret_digest(secret),
                         can_push=bool(can_push))
    db.session.add(robot)
    audit.record("robot.create", f"created robot {robot_username(project, name)} "
                 f"({'push+pull' if can_push else 'pull'})", subject_type="project",
                 subject=project.name, actor=actor.username, robot=name, can_push=bool(can_push))
    return robot, secret


def robots(project: Project) -> list[RobotAccount]:
    return list(db.session.scalars(select(RobotAccount).where(
        RobotAccount.project_id == project.id).order_by(RobotAccount.name)))


def revoke_robot(project: Project, name: str, *, actor: User) -> RobotAccount:
    _require_manage(actor, project)
    robot = db.session.scalar(select(RobotAccount).where(
        RobotAccount.project_id == project.id, RobotAccount.name == name))
    if robot is None:
        raise NotFound(f"no robot {name!r} in project {project.name}")
    if robot.revoked_at is None:
        robot.revoked_at = utcnow()
        audit.record("robot.revoke", f"revoked robot {robot_username(project, name)}",
                     subject_type="project", subject=project.name, actor=actor.username, robot=name)
    return robot


def authenticate_robot(username: str, secret: str) -> RobotAccount | None:
    if not username.startswith(ROBOT_PREFIX) or "+" not in username:
        return None
    project_name, _, name = username.removeprefix(ROBOT_PREFIX).partition("+")
    robot = db.session.scalar(select(RobotAccount).join(Project).where(
        Project.name == project_name, RobotAccount.name == name))
    if robot is None or robot.revoked_at is not None:
        return None
    if not secrets.compare_digest(robot.secret_hash, _secret_digest(secret)):
        return None
    return robot
