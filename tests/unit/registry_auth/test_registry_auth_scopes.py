"""Parsing and rendering of registry token `scope` parameters."""
import pytest

from berth.registry_auth import Scope, parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:proj/app:pull", Scope("repository", None, "proj/app", frozenset({"pull"}))),
        (
            "repository:proj/app:pull,push",
            Scope("repository", None, "proj/app", frozenset({"pull", "push"})),
        ),
        (
            "repository:proj/app:push,pull,pull",
            Scope("repository", None, "proj/app", frozenset({"pull", "push"})),
        ),
        ("repository:proj/app:*", Scope("repository", None, "proj/app", frozenset({"*"}))),
        (
            "repository:proj/app:delete",
            Scope("repository", None, "proj/app", frozenset({"delete"})),
        ),
        ("repository:busybox:pull", Scope("repository", None, "busybox", frozenset({"pull"}))),
        ("registry:catalog:*", Scope("registry", None, "catalog", frozenset({"*"}))),
        (
            "repository(plugin):proj/plug:pull",
            Scope("repository", "plugin", "proj/plug", frozenset({"pull"})),
        ),
        # A registry host with a port puts a ':' inside the name.
        (
            "repository:127.0.0.1:5000/proj/app:pull,push",
            Scope("repository", None, "127.0.0.1:5000/proj/app", frozenset({"pull", "push"})),
        ),
        (
            "repository:Registry.Example.com:443/proj/app:pull",
            Scope("repository", None, "Registry.Example.com:443/proj/app", frozenset({"pull"})),
        ),
        (
            "repository:a.b_c__d-e---f/g:pull",
            Scope("repository", None, "a.b_c__d-e---f/g", frozenset({"pull"})),
        ),
    ],
)
def test_parse_scope(text, expected):
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "repository",
        "repository:proj/app",  # no actions
        "repository:proj/app:",  # empty action list
        "repository:proj/app:pull,",  # empty action
        "repository:proj/app:pull,,push",
        "repository::pull",  # empty name
        ":proj/app:pull",  # empty type
        "Repository:proj/app:pull",  # type is lowercase
        "repo-sitory:proj/app:pull",
        "repository(plugin:proj/app:pull",  # unbalanced class
        "repository():proj/app:pull",  # empty class
        "repository(Plugin):proj/app:pull",
        "repository:proj/app:PULL",
        "repository:proj/app:pull push",  # one scope: spaces separate scopes, not actions
        "repository:proj app:pull",
        "repository:proj/app?x=1:pull",
        "repository:proj/ä:pull",
        "repository:" + "a" * 600 + ":pull",
        "repository:localhost:5000/app",  # the port is no action list
    ],
)
def test_parse_scope_rejects_malformed(text):
    with pytest.raises(ValueError, match="scope"):
        parse_scope(text)


@pytest.mark.parametrize(
    "text",
    [
        "repository:proj/app:pull",
        "repository:proj/app:pull,push",
        "repository(plugin):proj/plug:pull",
        "repository:127.0.0.1:5000/proj/app:delete,pull,push",
        "registry:catalog:*",
    ],
)
def test_render_round_trips(text):
    assert str(parse_scope(text)) == text


def test_render_sorts_actions():
    scope = Scope("repository", None, "p/a", frozenset({"push", "pull"}))
    assert str(scope) == "repository:p/a:pull,push"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], []),  # docker login: no scope at all
        ([""], []),
        (["   "], []),
        (["repository:p/a:pull"], ["repository:p/a:pull"]),
        # repeated scope params (GET), e.g. a cross-repository blob mount
        (
            ["repository:proj/app:pull,push", "repository:other/base:pull"],
            ["repository:proj/app:pull,push", "repository:other/base:pull"],
        ),
        # one space-separated param (POST form, some clients)
        (
            ["repository:proj/app:pull,push repository:other/base:pull"],
            ["repository:proj/app:pull,push", "repository:other/base:pull"],
        ),
        (
            ["repository:a/b:pull  registry:catalog:*", "repository:c/d:push"],
            ["repository:a/b:pull", "registry:catalog:*", "repository:c/d:push"],
        ),
    ],
)
def test_parse_scopes(params, expected):
    assert [str(scope) for scope in parse_scopes(params)] == expected


def test_parse_scopes_rejects_any_malformed_scope():
    with pytest.raises(ValueError, match="not of the form"):
        parse_scopes(["repository:p/a:pull", "nonsense"])
