"""The dependency planner: levels, teardown, readiness, and the errors raised before anything starts."""
from __future__ import annotations

import pytest

from scheduler.orchestration.dependencies import (
    DependencyError, blocked_by, cannot_start, deadline_exceeded, plan_levels, ready_to_start, teardown_order,
)

S, H = "started", "healthy"
# web -> api (healthy) -> db (healthy), api -> cache (started); worker -> db (started); docs alone.
STACK = {
    "web": [("api", H)],
    "api": [("db", H), ("cache", S)],
    "worker": [("db", S)],
    "db": [],
    "cache": [],
    "docs": [],
}


@pytest.mark.parametrize(("graph", "levels"), [
    ({}, []),
    ({"a": []}, [["a"]]),
    ({"b": [], "a": []}, [["a", "b"]]),
    ({"a": [("b", S)], "b": []}, [["b"], ["a"]]),
    # diamond: d waits for the longer of its two paths
    ({"a": [], "b": [("a", S)], "c": [("a", H), ("b", S)], "d": [("b", S), ("c", H)]},
     [["a"], ["b"], ["c"], ["d"]]),
    (STACK, [["cache", "db", "docs"], ["api", "worker"], ["web"]]),
    # the same dependency twice is one edge
    ({"a": [("b", S), ("b", H)], "b": []}, [["b"], ["a"]]),
])
def test_plan_levels(graph, levels):
    assert plan_levels(graph) == levels


@pytest.mark.parametrize(("graph", "order"), [
    ({}, []),
    ({"a": [("b", S)], "b": []}, [["a"], ["b"]]),
    # docs and web need nothing stopped first; db goes last, after api and worker
    (STACK, [["docs", "web", "worker"], ["api"], ["cache", "db"]]),
])
def test_teardown_order(graph, order):
    assert teardown_order(graph) == order


def test_teardown_stops_every_dependent_before_its_dependency():
    position = {name: i for i, level in enumerate(teardown_order(STACK)) for name in level}
    for name, deps in STACK.items():
        for dep, _ in deps:
            assert position[name] < position[dep]


@pytest.mark.parametrize(("graph", "message"), [
    ({"a": [("a", S)]}, "dependency cycle: a -> a"),
    ({"a": [("b", S)], "b": [("a", H)]}, "dependency cycle: a -> b -> a"),
    # printed from the cycle's smallest name, in dependency direction
    ({"c": [("a", S)], "a": [("b", S)], "b": [("c", S)]}, "dependency cycle: a -> b -> c -> a"),
    ({"z": [("x", S)], "x": [("y", S)], "y": [("x", S)]}, "dependency cycle: x -> y -> x"),
    # only the services on the cycle are named, not the ones merely waiting on it
    ({"app": [("q", S)], "q": [("r", S)], "r": [("q", S)], "ok": []}, "dependency cycle: q -> r -> q"),
    ({"api": [("db", S)]}, "api depends on db, which is not defined"),
    ({"api": [("db", "ready")], "db": []},
     "api depends on db with unknown condition 'ready' (expected one of started, healthy)"),
    ({"b": [("y", S)], "a": [("x", S)]},
     "a depends on x, which is not defined; b depends on y, which is not defined"),
])
def test_undeployable_graphs_raise_before_anything_starts(graph, message):
    for plan in (plan_levels, teardown_order, lambda g: ready_to_start(g, {})):
        with pytest.raises(DependencyError) as raised:
            plan(graph)
        assert str(raised.value) == message
    assert issubclass(DependencyError, ValueError)


@pytest.mark.parametrize(("status", "ready"), [
    ({}, ["cache", "db", "docs"]),
    ({"db": "starting", "cache": "starting", "docs": "healthy"}, []),
    # worker only needs db started; api needs db healthy, and cache (started) is met by healthy
    ({"db": "started", "cache": "healthy", "docs": "started"}, ["worker"]),
    ({"db": "healthy", "cache": "started", "docs": "started"}, ["api", "worker"]),
    ({"db": "healthy", "cache": "started", "api": "started", "worker": "started", "docs": "started"}, []),
    ({"db": "healthy", "cache": "started", "api": "healthy", "worker": "started", "docs": "started"}, ["web"]),
    # failed and non-pending services never come back as ready
    ({"db": "failed", "cache": "started", "docs": "failed"}, []),
])
def test_ready_to_start(status, ready):
    assert ready_to_start(STACK, status) == ready


@pytest.mark.parametrize(("status", "service", "reasons"), [
    ({}, "db", []),
    ({}, "api", ["waiting for cache (started)", "waiting for db (healthy)"]),
    ({"db": "started", "cache": "starting"}, "api", ["waiting for cache (started)", "waiting for db (healthy)"]),
    ({"db": "started", "cache": "healthy"}, "api", ["waiting for db (healthy)"]),
    ({"db": "healthy", "cache": "started"}, "api", []),
    ({"db": "failed", "cache": "started"}, "api", ["db failed"]),
    ({"api": "started"}, "web", ["waiting for api (healthy)"]),
])
def test_blocked_by(status, service, reasons):
    assert blocked_by(STACK, status, service) == reasons


def test_blocked_by_unknown_service():
    with pytest.raises(DependencyError, match="nope is not defined"):
        blocked_by(STACK, {}, "nope")


@pytest.mark.parametrize(("status", "doomed"), [
    ({}, []),
    ({"db": "failed"}, ["api", "web", "worker"]),
    ({"cache": "failed"}, ["api", "web"]),
    # api is already up, so a later cache failure dooms nothing: web can still follow api
    ({"cache": "failed", "api": "started"}, []),
])
def test_cannot_start(status, doomed):
    assert cannot_start(STACK, status) == doomed


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown status db='up'"):
        ready_to_start(STACK, {"db": "up"})


@pytest.mark.parametrize(("since", "now", "deadline", "exceeded"), [
    (100.0, 100.0, 30.0, False),
    (100.0, 130.0, 30.0, False),
    (100.0, 130.5, 30.0, True),
])
def test_deadline_exceeded(since, now, deadline, exceeded):
    assert deadline_exceeded(since, now, deadline) is exceeded


def test_levels_drive_a_whole_deployment():
    """Starting whatever is ready, round after round, brings every service up in level order."""
    status: dict[str, str] = {}
    rounds = []
    while ready := ready_to_start(STACK, status):
        rounds.append(ready)
        status.update({name: "healthy" for name in ready})
    assert rounds == plan_levels(STACK)
