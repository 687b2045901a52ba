"""Who may do what in the registry: roles to registry actions, and the grant for a
token request (the intersection of requested and permitted actions per scope)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from berth.registry_auth.names import project_of
from berth.registry_auth.scopes import Scope

# Action names exactly as registry 2.8 asks for them (registry/handlers/app.go):
# GET/HEAD -> pull; POST/PUT/PATCH -> pull and push; DELETE -> delete.
PULL = "pull"
PUSH = "push"
DELETE = "delete"
# In a token, `*` satisfies every action on that resource (the registry's actionSet).
ALL = "*"
REPOSITORY_ACTIONS = frozenset({PULL, PUSH, DELETE})

ROLE_ACTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # admin and developer differ in managing the project, not in the registry.
        "admin": REPOSITORY_ACTIONS,
        "developer": REPOSITORY_ACTIONS,
        "guest": frozenset({PULL}),
    }
)
ROBOT_ACTIONS: Mapping[bool, frozenset[str]] = MappingProxyType(
    {False: frozenset({PULL}), True: frozenset({PULL, PUSH})}  # keyed by can_push
)
PUBLIC_ACTIONS = frozenset({PULL})

CATALOG_TYPE, CATALOG_NAME = "registry", "catalog"


@dataclass(frozen=True)
class Principal:
    """Who asks: a user, a project's robot account, or anonymous (username None)."""

    username: str | None = None
    is_system_admin: bool = False
    kind: Literal["user", "robot"] = "user"

    def __post_init__(self) -> None:
        if self.kind not in ("user", "robot"):
            raise ValueError(f"principal kind must be 'user' or 'robot', not {self.kind!r}")
        if self.username is None and (self.is_system_admin or self.kind != "user"):
            raise ValueError("an anonymous principal can be neither system admin nor robot")

    @property
    def is_anonymous(self) -> bool:
        return self.username is None

    @property
    def subject(self) -> str:
        """The token's `sub`: empty for anonymous, as the registry expects."""
        return self.username or ""


ANONYMOUS = Principal()

# Implemented by the DB layer: the actions `principal` may do on the named project;
# an empty set when the project does not exist. `project_actions` builds the answer.
AllowedActions = Callable[[Principal, str], frozenset[str]]


@dataclass(frozen=True)
class Grant:
    """One `access` entry of a token; empty actions mean "asked for, not granted"."""

    type: str
    klass: str | None
    name: str
    actions: frozenset[str]

    def to_claim(self) -> dict[str, object]:
        claim: dict[str, object] = {"type": self.type, "name": self.name}
        if self.klass:
            claim["class"] = self.klass
        claim["actions"] = sorted(self.actions)
        return claim


def project_actions(
    principal: Principal,
    *,
    public: bool,
    role: str | None = None,
    robot_can_push: bool | None = None,
) -> frozenset[str]:
    """The actions on one existing project, from facts the DB layer looked up.

    `role` is the user's membership role (None: not a member); `robot_can_push` is
    set only when the principal is a robot account of this very project.
    """
    actions = set(PUBLIC_ACTIONS) if public else set()
    if principal.is_anonymous:
        return frozenset(actions)
    if principal.is_system_admin:
        actions |= ROLE_ACTIONS["admin"]
    if principal.kind == "robot":
        if role is not None:
            raise ValueError("robot accounts hold no membership role")
        if robot_can_push is not None:
            actions |= ROBOT_ACTIONS[robot_can_push]
    elif role is not None:
        if role not in ROLE_ACTIONS:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLE_ACTIONS)}")
        actions |= ROLE_ACTIONS[role]
    return frozenset(actions)


def grant_access(
    principal: Principal, scopes: Iterable[Scope], allowed_actions: AllowedActions
) -> list[Grant]:
    """The token's access list: every requested resource once, in request order, with
    the requested actions it may have. A partial or empty grant is not an error (token
    spec); the registry answers 401 itself when an action it needs is missing."""
    by_project: dict[str, frozenset[str]] = {}

    def permitted(scope: Scope) -> frozenset[str]:
        if scope.type == "repository":  # any class: image, plugin
            project = project_of(scope.name)
            if project is None:
                return frozenset()
            if project not in by_project:
                allowed = allowed_actions(principal, project)
                by_project[project] = _repository_actions(principal, allowed)
            return by_project[project]
        if (scope.type, scope.klass, scope.name) == (CATALOG_TYPE, None, CATALOG_NAME):
            return frozenset({ALL}) if principal.is_system_admin else frozenset()
        return frozenset()

    granted: dict[tuple[str, str | None, str], set[str]] = {}
    for scope in scopes:
        actions = granted.setdefault((scope.type, scope.klass, scope.name), set())
        actions |= scope.actions & permitted(scope)
    return [Grant(t, k, n, frozenset(actions)) for (t, k, n), actions in granted.items()]


def _repository_actions(principal: Principal, allowed: frozenset[str]) -> frozenset[str]:
    # Clamp what the DB layer answered: only real repository actions, and never more
    # than pull for anonymous, whatever a lookup bug might say.
    actions = set(allowed & REPOSITORY_ACTIONS)
    if principal.is_anonymous:
        actions &= PUBLIC_ACTIONS
    # `*` in a token means every action, so it is granted only to who has them all.
    if actions >= REPOSITORY_ACTIONS:
        actions.add(ALL)
    return frozenset(actions)
