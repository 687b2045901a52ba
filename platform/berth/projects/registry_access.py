"""The registry token service's database side: who is asking, and what they may do.

`issue_registry_token` is what the token endpoint calls: credentials and scopes in, the
spec's JSON body out. Permissions are read fresh on every request, so a removed member or
a revoked robot gets nothing more once the tokens already issued expire.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from berth import accounts, db
from berth.clock import utcnow
from berth.config import Config
from berth.models import RobotAccount, User
from berth.projects import services as projects
from berth.registry_auth import (
    ANONYMOUS, Principal, SigningKey, grant_access, issue_token, parse_scopes,
    project_actions, token_response,
)


class BadCredentials(Exception):
    """Credentials were given and are wrong: the endpoint answers 401."""


@dataclass(frozen=True)
class Caller:
    principal: Principal
    user: User | None = None
    robot: RobotAccount | None = None


def identify(username: str | None, password: str | None) -> Caller:
    """Anonymous without credentials; a robot account or a user with them."""
    if not username:
        return Caller(ANONYMOUS)
    robot = projects.authenticate_robot(username, password or "")
    if robot is not None:
        return Caller(Principal(username=username, kind="robot"), robot=robot)
    user = accounts.authenticate_token(password or "") if password else None
    if user is None or user.username != username:
        user = accounts.authenticate(username, password or "")
    if user is None:
        raise BadCredentials()
    return Caller(Principal(username=user.username, is_system_admin=user.is_admin), user=user)


def allowed_actions_for(caller: Caller):
    """The DB-backed lookup the pure grant decision calls, once per project."""

    def allowed(principal: Principal, project_name: str) -> frozenset[str]:
        project = projects.find_project(project_name)
        if project is None:
            return frozenset()
        if caller.robot is not None:
            own = caller.robot.project_id == project.id
            return project_actions(principal, public=project.public,
                                   robot_can_push=caller.robot.can_push if own else None)
        return project_actions(principal, public=project.public,
                               role=projects.role_of(caller.user, project))

    return allowed


@cache
def signing_key(directory: Path) -> SigningKey:
    """Created on first start, kept in the instance folder, loaded once per process."""
    return SigningKey.load_or_create(directory)


def key_directory(config: Config) -> Path:
    return config.instance_dir / "token-signing"


def issue_registry_token(config: Config, *, service: str, scope_params: list[str],
                         username: str | None, password: str | None) -> dict:
    """ValueError for a malformed scope or service (400); BadCredentials (401)."""
    if service != config.registry_service:
        raise ValueError(f"unknown service {service!r}: this token service serves "
                         f"{config.registry_service!r}")
    scopes = parse_scopes(scope_params)
    caller = identify(username, password)
    grants = grant_access(caller.principal, scopes, allowed_actions_for(caller))
    issued = issue_token(signing_key(key_directory(config)), issuer=config.token_issuer,
                         audience=service, subject=caller.principal.subject, access=grants,
                         lifetime_s=config.token_lifetime_s, now=utcnow())
    db.session.rollback()  # read-only: release the snapshot at once
    return token_response(issued)
