"""The grant decision: roles to actions, and requested-intersect-permitted per scope."""
import pytest

from berth.registry_auth import (
    ANONYMOUS,
    ROLE_ACTIONS,
    Grant,
    Principal,
    grant_access,
    parse_scopes,
    project_actions,
)

# A stand-in for the DB layer: projects (name -> public), memberships, robot accounts.
PROJECTS = {"shop": False, "pub": True, "base": False}
MEMBERS = {
    ("dev", "shop"): "developer",
    ("boss", "shop"): "admin",
    ("viewer", "shop"): "guest",
    ("dev", "base"): "guest",
}
ROBOTS = {("robot$shop+ci", "shop"): True, ("robot$shop+host", "shop"): False}


def db_allowed_actions(principal: Principal, project: str) -> frozenset[str]:
    if project not in PROJECTS:
        return frozenset()
    public, key = PROJECTS[project], (principal.username, project)
    if principal.kind == "robot":
        return project_actions(principal, public=public, robot_can_push=ROBOTS.get(key))
    return project_actions(principal, public=public, role=MEMBERS.get(key))


DEV = Principal("dev")
BOSS = Principal("boss")
VIEWER = Principal("viewer")
STRANGER = Principal("stranger")
SYSADMIN = Principal("root", is_system_admin=True)
CI_ROBOT = Principal("robot$shop+ci", kind="robot")
HOST_ROBOT = Principal("robot$shop+host", kind="robot")


def grants(principal, *scopes):
    """{resource: actions}, repositories by bare name, other types as type:name."""
    return {
        grant.name if grant.type == "repository" else f"{grant.type}:{grant.name}": grant.actions
        for grant in grant_access(principal, parse_scopes(scopes), db_allowed_actions)
    }


@pytest.mark.parametrize(
    ("principal", "scope", "expected"),
    [
        # members of a private project, by role
        (BOSS, "repository:shop/web:pull,push,delete", {"pull", "push", "delete"}),
        (DEV, "repository:shop/web:pull,push,delete", {"pull", "push", "delete"}),
        (VIEWER, "repository:shop/web:pull,push,delete", {"pull"}),
        (STRANGER, "repository:shop/web:pull,push", set()),
        (ANONYMOUS, "repository:shop/web:pull", set()),
        # partial grant: a subset is not an error
        (VIEWER, "repository:shop/web:pull,push", {"pull"}),
        (DEV, "repository:shop/web:push", {"push"}),
        # public project: anyone may pull, only members more
        (ANONYMOUS, "repository:pub/web:pull,push", {"pull"}),
        (STRANGER, "repository:pub/web:pull,push,delete", {"pull"}),
        (CI_ROBOT, "repository:pub/web:pull,push", {"pull"}),
        # robot accounts: their own project only, pull or pull+push, never delete
        (CI_ROBOT, "repository:shop/web:pull,push,delete", {"pull", "push"}),
        (HOST_ROBOT, "repository:shop/web:pull,push", {"pull"}),
        (CI_ROBOT, "repository:base/img:pull", set()),
        # system admins: everything on existing projects, nothing on missing ones
        (SYSADMIN, "repository:shop/web:pull,push,delete", {"pull", "push", "delete"}),
        (SYSADMIN, "repository:nowhere/web:pull,push", set()),
        # `*` means every action to the registry: only for who has them all
        (DEV, "repository:shop/web:*", {"*"}),
        (BOSS, "repository:shop/web:*", {"*"}),
        (VIEWER, "repository:shop/web:*", set()),
        (CI_ROBOT, "repository:shop/web:*", set()),
        (ANONYMOUS, "repository:pub/web:*", set()),
        # unknown actions are simply not granted
        (DEV, "repository:shop/web:pull,frobnicate", {"pull"}),
        # names outside any project or outside the grammar get nothing
        (SYSADMIN, "repository:busybox:pull", set()),
        (SYSADMIN, "repository:127.0.0.1:5000/shop/web:pull", set()),
        (DEV, "repository:Shop/web:pull", set()),
        # classes of the repository type are repositories too
        (DEV, "repository(plugin):shop/plug:pull,push", {"pull", "push"}),
        # deeper paths belong to the first component's project
        (VIEWER, "repository:shop/team/web:pull,push", {"pull"}),
    ],
)
def test_repository_grants(principal, scope, expected):
    (granted,) = grant_access(principal, parse_scopes([scope]), db_allowed_actions)
    assert set(granted.actions) == expected


@pytest.mark.parametrize(
    ("principal", "expected"),
    [(SYSADMIN, {"*"}), (BOSS, set()), (DEV, set()), (CI_ROBOT, set()), (ANONYMOUS, set())],
)
def test_catalog_is_for_system_admins(principal, expected):
    assert grants(principal, "registry:catalog:*") == {"registry:catalog": expected}


@pytest.mark.parametrize(
    "scope",
    [
        "registry:catalog:pull",
        "registry:other:*",
        "registry(x):catalog:*",
        "namespace:shop:pull",
        "plugin:shop/x:pull",
    ],
)
def test_other_resources_get_nothing_even_for_system_admins(scope):
    (granted,) = grant_access(SYSADMIN, parse_scopes([scope]), db_allowed_actions)
    assert granted.actions == frozenset()


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        # dev may pull from base (guest there): the mount is allowed
        (DEV, {"shop/web": {"pull", "push"}, "base/img": {"pull"}}),
        # boss has no standing in base: the registry will refuse the mount
        (BOSS, {"shop/web": {"pull", "push"}, "base/img": set()}),
        (ANONYMOUS, {"shop/web": set(), "base/img": set()}),
    ],
)
def test_cross_repository_mount_needs_pull_on_the_source(principal, expected):
    mount = ("repository:shop/web:pull,push", "repository:base/img:pull")
    assert grants(principal, *mount) == expected


def test_login_without_scope_grants_nothing_and_asks_nothing():
    asked = []

    def recording(principal, project):
        asked.append(project)
        return frozenset()

    assert grant_access(DEV, parse_scopes([]), recording) == []
    assert asked == []


def test_repeated_resource_is_merged_in_request_order():
    result = grant_access(
        DEV,
        parse_scopes(
            ["repository:shop/b:pull", "repository:shop/a:push", "repository:shop/b:push"]
        ),
        db_allowed_actions,
    )
    assert [(grant.name, grant.actions) for grant in result] == [
        ("shop/b", frozenset({"pull", "push"})),
        ("shop/a", frozenset({"push"})),
    ]


def test_each_project_is_looked_up_once_per_request():
    asked = []

    def counting(principal, project):
        asked.append(project)
        return db_allowed_actions(principal, project)

    scopes = parse_scopes(["repository:shop/a:pull repository:shop/b:pull repository:base/c:pull"])
    grant_access(DEV, scopes, counting)
    assert asked == ["shop", "base"]


def test_anonymous_never_gets_more_than_pull_whatever_the_lookup_says():
    def buggy_lookup(principal, project):
        return frozenset({"pull", "push", "delete", "*", "x"})

    scopes = parse_scopes(["repository:shop/web:pull,push,delete,*"])
    (granted,) = grant_access(ANONYMOUS, scopes, buggy_lookup)
    assert granted.actions == {"pull"}


def test_lookup_answers_outside_repository_actions_are_dropped():
    def odd_lookup(principal, project):
        return frozenset({"pull", "admin"})

    (granted,) = grant_access(DEV, parse_scopes(["repository:shop/web:pull,admin"]), odd_lookup)
    assert granted.actions == {"pull"}


@pytest.mark.parametrize(
    ("principal", "kwargs", "expected"),
    [
        (ANONYMOUS, dict(public=False), set()),
        (ANONYMOUS, dict(public=True), {"pull"}),
        (STRANGER, dict(public=False), set()),
        (STRANGER, dict(public=True), {"pull"}),
        (VIEWER, dict(public=False, role="guest"), {"pull"}),
        (DEV, dict(public=False, role="developer"), {"pull", "push", "delete"}),
        (BOSS, dict(public=True, role="admin"), {"pull", "push", "delete"}),
        (SYSADMIN, dict(public=False), {"pull", "push", "delete"}),
        (CI_ROBOT, dict(public=False, robot_can_push=True), {"pull", "push"}),
        (HOST_ROBOT, dict(public=False, robot_can_push=False), {"pull"}),
        (HOST_ROBOT, dict(public=False), set()),  # a robot of another project
        (HOST_ROBOT, dict(public=True), {"pull"}),
    ],
)
def test_project_actions(principal, kwargs, expected):
    assert project_actions(principal, **kwargs) == expected


def test_role_table():
    assert ROLE_ACTIONS == {
        "admin": {"pull", "push", "delete"},
        "developer": {"pull", "push", "delete"},
        "guest": {"pull"},
    }
    with pytest.raises(TypeError):
        ROLE_ACTIONS["guest"] = frozenset({"push"})  # shared constant, read-only


@pytest.mark.parametrize(
    ("principal", "kwargs", "message"),
    [
        (DEV, dict(public=False, role="owner"), "unknown role"),
        (CI_ROBOT, dict(public=False, role="guest"), "no membership role"),
    ],
)
def test_project_actions_rejects_inconsistent_lookups(principal, kwargs, message):
    with pytest.raises(ValueError, match=message):
        project_actions(principal, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(username=None, is_system_admin=True), "anonymous"),
        (dict(username=None, kind="robot"), "anonymous"),
        (dict(username="x", kind="service"), "kind"),
    ],
)
def test_principal_rejects_impossible_combinations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Principal(**kwargs)


@pytest.mark.parametrize(
    ("principal", "subject"), [(ANONYMOUS, ""), (DEV, "dev"), (CI_ROBOT, "robot$shop+ci")]
)
def test_subject(principal, subject):
    assert principal.subject == subject


@pytest.mark.parametrize(
    ("grant", "claim"),
    [
        (
            Grant("repository", None, "shop/web", frozenset({"push", "pull"})),
            {"type": "repository", "name": "shop/web", "actions": ["pull", "push"]},
        ),
        (
            Grant("repository", "plugin", "shop/plug", frozenset({"pull"})),
            {"type": "repository", "name": "shop/plug", "class": "plugin", "actions": ["pull"]},
        ),
        # not granted: listed with an empty list, as the token spec's `[]`
        (
            Grant("repository", None, "shop/web", frozenset()),
            {"type": "repository", "name": "shop/web", "actions": []},
        ),
    ],
)
def test_grant_claim(grant, claim):
    assert grant.to_claim() == claim
