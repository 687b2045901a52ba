"""The registry token service's database side: who is asking, and what they may do.

`issue_registry_token` is what the token endpoint calls: credentials and scopes in, the
spec's JSON body out. Permissions are read fresh on every request, so a removed member or
a revoked robot gets nothing more once the tokens already issued expire.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from sqlalchemy import and_, bindparam, select

from berth import accounts, db
from berth.clock import utcnow
from berth.config import Config
from berth.models import Membership, Project, RobotAccount, User
from berth.models.registries import Registry
from berth.projects import pull_credentials
from berth.projects import services as projects
from berth.registry_auth import (
    ANONYMOUS, Principal, SigningKey, grant_access, issue_token, parse_scopes,
    project_actions, token_response,
)


class BadCredentials(Exception):
    """Credentials were given and are wrong: the endpoint answers 401."""


# A deploy's pull credential outlives the pull it was made for by a margin, no more.
PULL_CREDENTIAL_MAX_AGE_S = 600
MIRROR_ACTIONS = frozenset({"pull"})


@dataclass(frozen=True)
class Caller:
    principal: Principal
    user: User | None = None
    robot: RobotAccount | None = None
    deploy_project: str | None = None  # a deploy's pull credential: pull on this project


def identify(username: str | None, password: str | None, secret_key: str = "") -> Caller:
    """Anonymous without credentials; a deploy credential, a robot account or a user."""
    if not username:
        return Caller(ANONYMOUS)
    if username.startswith(pull_credentials.USERNAME_PREFIX):
        project = pull_credentials.verify(secret_key, username, password or "",
                                          PULL_CREDENTIAL_MAX_AGE_S) if secret_key else None
        if project is None:
            raise BadCredentials()
        return Caller(Principal(username=username, kind="robot"), deploy_project=project)
    robot = projects.authenticate_robot(username, password or "")
    if robot is not None:
        return Caller(Principal(username=username, kind="robot"), robot=robot)
    user = accounts.authenticate_token(password or "") if password else None
    if user is None or user.username != username:
        user = accounts.authenticate(username, password or "")
    if user is None:
        raise BadCredentials()
    return Caller(Principal(username=user.username, is_system_admin=user.is_admin), user=user)


# What a token needs to know about one project, in one round trip: its id, name and
# visibility, and (for a user) the user's role in it. Built once: the token endpoint is
# hot (docker asks for a token before nearly every registry call), and a prebuilt
# statement skips SQLAlchemy's per-call construction and cache-key work; plain columns
# skip ORM object loading.
_PROJECT_FACTS = select(Project.id, Project.name, Project.public).where(
    Project.name == bindparam("name"))
_PROJECT_FACTS_AND_ROLE = (
    select(Project.id, Project.name, Project.public, Membership.role)
    .outerjoin(Membership, and_(Membership.project_id == Project.id,
                                Membership.user_id == bindparam("user_id")))
    .where(Project.name == bindparam("name"))
)


def allowed_actions_for(caller: Caller):
    """The DB-backed lookup the pure grant decision calls, once per project."""

    def allowed(principal: Principal, project_name: str) -> frozenset[str]:
        as_user = (caller.user is not None and caller.deploy_project is None
                   and caller.robot is None)
        if as_user:
            project = db.session.execute(_PROJECT_FACTS_AND_ROLE, {
                "name": project_name, "user_id": caller.user.id}).first()
        else:
            project = db.session.execute(_PROJECT_FACTS, {"name": project_name}).first()
        if project is None:
            return frozenset()
        if caller.deploy_project is not None:
            own = caller.deploy_project == project.name
            return project_actions(principal, public=project.public,
                                   robot_can_push=False if own else None)
        if caller.robot is not None:
            own = caller.robot.project_id == project.id
            return project_actions(principal, public=project.public,
                                   robot_can_push=caller.robot.can_push if own else None)
        # A membership is unique per (project, user): the outer join yields one row,
        # with role None for a non-member; anonymous callers have no role.
        return project_actions(principal, public=project.public,
                               role=project.role if as_user else None)

    return allowed


@cache
def signing_key(directory: Path) -> SigningKey:
    """Created on first start, kept in the instance folder, loaded once per process."""
    return SigningKey.load_or_create(directory)


def key_directory(config: Config) -> Path:
    return config.instance_dir / "token-signing"


def _on_mirror(grant) -> frozenset[str]:
    # `*` on a repository includes pull, so it still pulls; nothing else survives.
    if grant.type == "repository" and "*" in grant.actions:
        return MIRROR_ACTIONS
    return grant.actions & MIRROR_ACTIONS


def issue_registry_token(config: Config, *, service: str, scope_params: list[str],
                         username: str | None, password: str | None) -> dict:
    """ValueError for a malformed scope or service (400); BadCredentials (401)."""
    mirror = False
    if service != config.registry_service:
        role = db.session.scalar(select(Registry.role).where(Registry.service == service))
        if role is None:
            raise ValueError(f"unknown service {service!r}: this token service serves "
                             f"{config.registry_service!r} and the registered mirrors")
        mirror = role == "mirror"
    scopes = parse_scopes(scope_params)
    caller = identify(username, password, config.secret_key)
    grants = grant_access(caller.principal, scopes, allowed_actions_for(caller))
    if mirror:
        # Mirrors only serve pulls: what they hold comes from the sync, which signs its own
        # tokens; a push or delete there would diverge from the primary.
        grants = [replace(g, actions=_on_mirror(g)) for g in grants]
    issued = issue_token(signing_key(key_directory(config)), issuer=config.token_issuer,
                         audience=service, subject=caller.principal.subject, access=grants,
                         lifetime_s=config.token_lifetime_s, now=utcnow())
    db.session.rollback()  # read-only: release the snapshot at once
    return token_response(issued)
