"""The reconciler's diff: creates, removes, replacements and adoptions, and that applying them converges."""
from __future__ import annotations

import dataclasses

import pytest

from scheduler.orchestration.reconcile import (
    Adopt, Create, DesiredService, ObservedContainer, Plan, Remove, Replace, Start, container_name,
    reconcile,
)

API = DesiredService("api", "r2", 3)


def c(slot: int, revision: str = "r2", service: str = "api", host: int = 1, state: str = "running",
      health: str | None = "healthy", **fields) -> ObservedContainer:
    """Container `slot` of api at r2 on host 1, running and healthy, named as the reconciler names it."""
    return ObservedContainer(fields.pop("name", container_name(service, revision, slot)), service, slot,
                             revision, host, state, health, **fields)


def healthy_set(service: str = "api", revision: str = "r2", count: int = 3) -> list[ObservedContainer]:
    return [c(slot, revision, service) for slot in range(count)]


def test_container_name():
    assert container_name("api", "r2", 0) == "api_r2_0"


@pytest.mark.parametrize(("desired", "observed", "actions"), [
    # converged: nothing to do
    ([API], healthy_set(), []),
    # nothing yet: fill the slots, lowest first
    ([API], [], [Create("api", "r2", 0), Create("api", "r2", 1), Create("api", "r2", 2)]),
    ([API], [c(0), c(2)], [Create("api", "r2", 1)]),
    # too many: the high slots go
    ([DesiredService("api", "r2", 1)], healthy_set(), [Remove("api_r2_1", "extra: slot 1 of 1 replicas", 1),
                                                       Remove("api_r2_2", "extra: slot 2 of 1 replicas", 1)]),
    # zero replicas removes the service's containers
    ([DesiredService("api", "r2", 0)], [c(0)], [Remove("api_r2_0", "extra: slot 0 of 0 replicas", 1)]),
    # old revision: new ones are created before the old ones are removed
    ([DesiredService("api", "r2", 1)], [c(0, "r1")],
     [Create("api", "r2", 0), Remove("api_r1_0", "old revision r1", 1)]),
    # a rollout step lists both revisions; each converges to its own count
    ([DesiredService("api", "r1", 1), DesiredService("api", "r2", 2)], [c(0, "r1"), c(1, "r1")],
     [Create("api", "r2", 0), Create("api", "r2", 1), Remove("api_r1_1", "extra: slot 1 of 1 replicas", 1)]),
    # services outside the pass are left alone, even with no desired entry
    ([API], healthy_set() + [c(0, service="web")], []),
])
def test_diff(desired, observed, actions):
    assert reconcile(desired, observed).actions == tuple(actions)


@pytest.mark.parametrize(("container", "down", "draining", "reason"), [
    (c(1, state="exited", health=None), (), (), "exited"),
    (c(1, state="dead", health=None), (), (), "dead"),
    (c(1, state="missing", health=None), (), (), "missing"),
    (c(1, health="unhealthy"), (), (), "unhealthy"),
    (c(1, host=7), {7}, (), "host down"),
    (c(1, host=7), (), {7}, "host draining"),
    # a real failure is named before draining, and a down host before anything docker last said
    (c(1, host=7, state="exited"), (), {7}, "exited"),
    (c(1, host=7, health="unhealthy"), {7}, {7}, "host down"),
    # misnamed (e.g. renamed by hand): replaced so the slot gets its deterministic name back
    (c(1, name="api-old"), (), (), "name is not api_r2_1"),
])
def test_replacements(container, down, draining, reason):
    plan = reconcile([API], [c(0), container, c(2)], down, draining)
    assert plan.actions == (Replace(container.name, 1, reason, "api", "r2", container.host_id),)


@pytest.mark.parametrize(("reason", "remove_first"), [
    ("exited", True), ("dead", True), ("missing", True), ("unhealthy", True),
    # still serving (draining) or unreachable (down): start the replacement elsewhere first
    ("host down", False), ("host draining", False),
])
def test_replace_order(reason, remove_first):
    assert Replace("api_r2_0", 0, reason, "api", "r2", 1).remove_first is remove_first


@pytest.mark.parametrize("container", [
    c(1, health="starting"),
    c(1, health=None),  # no healthcheck: running is as good as it gets
])
def test_left_alone(container):
    assert reconcile([API], [c(0), container, c(2)]).empty


@pytest.mark.parametrize("health", ["starting", None])
def test_a_container_created_but_never_started_is_started(health):
    """A pass died between create and start: the container is this slot's, so start it."""
    container = c(1, state="created", health=health)
    assert reconcile([API], [c(0), container, c(2)]).actions == (Start(container.name, container.host_id),)


@pytest.mark.parametrize("container", [
    c(0, managed=False),
    c(0, managed=False, state="exited"),
    c(9, managed=False),
    c(0, "r1", managed=False),
    c(0, managed=False, host=7),
])
def test_unmanaged_containers_are_never_touched(container):
    """Not replaced, not removed as extra or old, and not counted as filling a slot either."""
    plan = reconcile([API], [container, c(1), c(2)], down_hosts={7})
    assert plan.actions == (Create("api", "r2", 0),)


@pytest.mark.parametrize(("container", "actions"), [
    (c(1, known=False), [Adopt("api_r2_1", 1)]),
    (c(1, known=False, health="starting"), [Adopt("api_r2_1", 1)]),
    # unknown but broken, extra or old: handled like any other, never adopted
    (c(1, known=False, state="exited"), [Replace("api_r2_1", 1, "exited", "api", "r2", 1)]),
    (c(1, "r1", known=False), [Create("api", "r2", 1), Remove("api_r1_1", "old revision r1", 1)]),
])
def test_adoption(container, actions):
    assert reconcile([API], [c(0), container, c(2)]).actions == tuple(actions)


@pytest.mark.parametrize(("pair", "removed"), [
    # a create-first replace cut short: the one on the draining host goes
    ([c(1, host=7), c(1, host=8, health="starting")], ("api_r2_1", 7)),
    # otherwise the healthy one, then the known one, then the lowest host is kept
    ([c(1, host=3, health="unhealthy"), c(1, host=8)], ("api_r2_1", 3)),
    ([c(1, host=3, known=False), c(1, host=8)], ("api_r2_1", 3)),
    ([c(1, host=8), c(1, host=3)], ("api_r2_1", 8)),
])
def test_duplicates_in_a_slot(pair, removed):
    plan = reconcile([API], [c(0), *pair, c(2)], draining_hosts={7})
    assert plan.actions == (Remove(removed[0], "duplicate in slot 1", removed[1]),)


def test_replacement_budget_defers_in_service_and_slot_order():
    observed = [c(slot, service=service, host=7) for service in ("web", "api") for slot in range(3)]
    desired = [API, DesiredService("web", "r2", 3)]
    plan = reconcile(desired, observed, down_hosts={7}, max_replacements=2)
    assert [(a.name, a.reason) for a in plan.actions] == [("api_r2_0", "host down"), ("api_r2_1", "host down")]
    assert plan.deferred == ("api_r2_2", "web_r2_0", "web_r2_1", "web_r2_2")
    assert not plan.empty
    # creates are not replacements and are never held back
    plan = reconcile([API], [c(0, host=7)], down_hosts={7}, max_replacements=0)
    assert plan.actions == (Create("api", "r2", 1), Create("api", "r2", 2))
    assert plan.deferred == ("api_r2_0",)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(desired=[API, API], observed=[]), "revision r2 is desired twice"),
    (dict(desired=[API], observed=[], max_replacements=-1), "max_replacements"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reconcile(**kwargs)


@pytest.mark.parametrize(("factory", "message"), [
    (lambda: DesiredService("api", "r2", -1), "replicas must be >= 0"),
    (lambda: c(0, state="paused"), "state 'paused'"),
    (lambda: c(0, health="ok"), "health 'ok'"),
])
def test_bad_records(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


# --- idempotence: apply a plan the way the executor would, then reconcile again ---------------

GOOD_HOST = 100


def apply(plan: Plan, observed: list[ObservedContainer]) -> list[ObservedContainer]:
    """The executor in miniature: new containers come up healthy on a good host."""
    result = list(observed)

    def drop(name, host_id):
        result[:] = [o for o in result if not (o.managed and o.name == name and o.host_id == host_id)]

    def create(service, revision, slot):
        result.append(ObservedContainer(container_name(service, revision, slot), service, slot, revision,
                                        GOOD_HOST, "running", "healthy"))

    for action in plan.actions:
        if isinstance(action, Create):
            create(action.service, action.revision, action.slot)
        elif isinstance(action, Remove):
            drop(action.name, action.host_id)
        elif isinstance(action, Replace):
            drop(action.name, action.host_id)
            create(action.service, action.revision, action.slot)
        else:
            result = [dataclasses.replace(o, known=True) if (o.name, o.host_id) == (action.name, action.host_id)
                      else o for o in result]
    return result


MESSY = [
    c(0, state="exited", health=None),
    c(1, host=7),  # down
    c(2, host=8),  # draining
    c(3, health="unhealthy"),
    c(4, known=False),
    c(5),
    c(5, host=8),  # duplicate
    c(0, "r1"),
    c(1, "r1", state="missing", health=None),
    c(6, service="web", revision="w1"),
    c(0, service="db", revision="d1", managed=False, state="exited"),
    c(12, name="api-old"),
]


@pytest.mark.parametrize("desired", [
    [DesiredService("api", "r2", 8), DesiredService("web", "w1", 2)],
    [DesiredService("api", "r2", 3), DesiredService("web", "w1", 0)],
    [DesiredService("api", "r1", 2), DesiredService("api", "r2", 4)],
])
def test_applying_a_plan_converges(desired):
    plan = reconcile(desired, MESSY, {7}, {8})
    assert not plan.empty
    after = apply(plan, MESSY)
    assert reconcile(desired, after, {7}, {8}).empty
    # and the unmanaged container is still exactly where it was
    assert [o for o in after if not o.managed] == [MESSY[10]]


def test_a_budgeted_reconciler_converges_over_several_passes():
    desired = [DesiredService("api", "r2", 8)]
    observed, passes = MESSY, 0
    while not (plan := reconcile(desired, observed, {7}, {8}, max_replacements=1)).empty:
        assert sum(isinstance(a, Replace) for a in plan.actions) <= 1
        observed, passes = apply(plan, observed), passes + 1
    assert passes == 4  # one per broken slot 0..3; duplicates, extras and creates need no budget
