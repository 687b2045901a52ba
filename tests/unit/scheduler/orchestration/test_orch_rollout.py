"""The release planner: rolling batches, canary promotion, blue-green switching, and rollbacks."""
from __future__ import annotations

import pytest

from scheduler.orchestration.reconcile import DesiredService
from scheduler.orchestration.rollout import (
    Observed, RolloutError, Step, as_desired, blue_green, canary, next_step, promote, rollback, rolling, start,
)

OLD, NEW = "r1", "r2"


def healthy(step: Step) -> Observed:
    """Everything the step asked for came up healthy."""
    return Observed(step.desired.get(NEW, 0), step.desired.get(OLD, 0))


def run_rolling(state, first: Observed | None = None, limit: int = 20) -> list[Step]:
    """Step until done, each time reporting the requested instances healthy."""
    steps = [next_step(state, first or Observed(0, state.replicas))]
    while steps[-1].status != "done" and len(steps) < limit:
        steps.append(next_step(steps[-1].state, healthy(steps[-1])))
    return steps


def new_counts(steps: list[Step]) -> list[int]:
    return [step.desired.get(NEW, 0) for step in steps]


def batches(counts: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *counts], counts) if b != a]


@pytest.mark.parametrize(("replicas", "ratio", "expected"), [
    (10, 0.25, [3, 3, 3, 1]),
    (4, 0.25, [1, 1, 1, 1]),
    (3, 0.1, [1, 1, 1]),  # ceil, and at least 1
    (5, 0.5, [3, 2]),
    (6, 1.0, [6]),
    (1, 0.25, [1]),
])
def test_rolling_batches(replicas, ratio, expected):
    steps = run_rolling(start(rolling(ratio), OLD, NEW, replicas))
    assert batches(new_counts(steps)) == expected
    assert steps[-1].status == "done"
    assert steps[-1].desired == {NEW: replicas}
    assert steps[-1].traffic == (NEW,)
    for step in steps[:-1]:
        # batches replace: old and new always add up to the replicas
        assert sum(step.desired.values()) == replicas
        assert step.status == "waiting"
        assert step.traffic == (OLD, NEW)


def test_rolling_waits_for_each_batch_to_be_healthy():
    step = next_step(start(rolling(0.25), OLD, NEW, 10), Observed(0, 10))
    assert step.desired == {OLD: 7, NEW: 3}
    for observed in (Observed(0, 7), Observed(2, 7), Observed(2, 7)):
        step = next_step(step.state, observed)
        assert (step.status, step.desired) == ("waiting", {OLD: 7, NEW: 3})
    assert "3/10" in step.reason
    step = next_step(step.state, Observed(3, 7))
    assert step.desired == {OLD: 4, NEW: 6}
    # the same observation again changes nothing: safe to call on every tick
    assert next_step(step.state, Observed(3, 7)).desired == {OLD: 4, NEW: 6}


def test_canary_then_promote_then_rolling():
    state = start(canary(1), OLD, NEW, 5)
    step = next_step(state, Observed(0, 5))
    assert (step.status, step.desired, step.traffic) == ("waiting", {OLD: 5, NEW: 1}, (OLD, NEW))
    with pytest.raises(RolloutError, match="canaries not healthy yet"):
        promote(step.state)
    step = next_step(step.state, Observed(1, 5))
    assert (step.status, step.desired) == ("waiting_for_promotion", {OLD: 5, NEW: 1})
    # waiting for promotion is a resting state, not a timeout
    assert next_step(step.state, Observed(1, 5)).status == "waiting_for_promotion"

    state = promote(step.state)
    steps = run_rolling(state, first=Observed(1, 5))
    # the canary counts as the first batch: batches of ceil(5 × 0.25) = 2 follow it
    assert new_counts(steps) == [3, 5, 5]
    assert [step.desired.get(OLD, 0) for step in steps] == [2, 0, 0]
    assert [step.status for step in steps] == ["waiting", "waiting", "done"]
    # a canary lost right after promotion holds the rollout where it is
    assert next_step(state, Observed(0, 5)).desired == {OLD: 4, NEW: 1}
    assert steps[-1].status == "done"


def test_canary_rollback_removes_the_canaries():
    step = next_step(start(canary(2), OLD, NEW, 5), Observed(2, 5))
    state = rollback(step.state)
    step = next_step(state, Observed(2, 5))
    assert (step.status, step.desired, step.traffic) == ("rolled_back", {OLD: 5}, (OLD,))


def test_blue_green_switch_promote():
    step = next_step(start(blue_green(), OLD, NEW, 4), Observed(0, 4))
    assert (step.status, step.desired, step.traffic) == ("waiting", {OLD: 4, NEW: 4}, (OLD,))
    step = next_step(step.state, Observed(3, 4))
    assert step.traffic == (OLD,)  # no switch until every green instance is healthy
    step = next_step(step.state, Observed(4, 4))
    assert (step.status, step.desired, step.traffic) == ("waiting_for_promotion", {OLD: 4, NEW: 4}, (NEW,))
    # once switched, a dip in green health does not flip traffic back and forth
    assert next_step(step.state, Observed(3, 4)).traffic == (NEW,)
    step = next_step(promote(step.state), Observed(4, 4))
    assert (step.status, step.desired, step.traffic) == ("done", {NEW: 4}, (NEW,))


def test_blue_green_rollback_after_switch_is_instant():
    step = next_step(next_step(start(blue_green(), OLD, NEW, 4), Observed(0, 4)).state, Observed(4, 4))
    assert step.traffic == (NEW,)
    step = next_step(rollback(step.state), Observed(4, 4))
    # traffic goes back in this very step: blue never stopped running
    assert (step.status, step.desired, step.traffic) == ("rolled_back", {OLD: 4}, (OLD,))


@pytest.mark.parametrize("strategy", [rolling(0.25), canary(1), blue_green()])
@pytest.mark.parametrize(("failures", "status"), [(0, "waiting"), (2, "waiting"), (3, "failed"), (7, "failed")])
def test_unhealthy_new_instances_roll_back_automatically(strategy, failures, status):
    state = next_step(start(strategy, OLD, NEW, 4), Observed(0, 4)).state
    step = next_step(state, Observed(0, 4, new_failures=failures))
    assert step.status == status
    if status == "failed":
        assert (step.desired, step.traffic) == ({OLD: 4}, (OLD,))
        assert step.reason == f"{failures} health failures of r2 (limit 3): rolled back to r1"
        # terminal: later ticks keep it rolled back, even once new instances would look healthy
        assert next_step(step.state, Observed(4, 4)).status == "failed"


def test_failure_after_blue_green_switch_switches_back():
    step = next_step(start(blue_green(), OLD, NEW, 2), Observed(2, 2))
    assert step.traffic == (NEW,)
    step = next_step(step.state, Observed(1, 2, new_failures=3))
    assert (step.status, step.traffic) == ("failed", (OLD,))


@pytest.mark.parametrize(("make_state", "transition", "message"), [
    (lambda: start(rolling(0.5), OLD, NEW, 4), promote, "cannot promote a rolling rollout"),
    (lambda: start(blue_green(), OLD, NEW, 4), promote, "cannot promote a blue_green rollout in phase green"),
    (lambda: run_rolling(start(rolling(1.0), OLD, NEW, 1))[-1].state, rollback, "already done"),
    (lambda: rollback(start(canary(1), OLD, NEW, 4)), rollback, "already rolled_back"),
    (lambda: rollback(start(canary(1), OLD, NEW, 4)), promote, "cannot promote a canary rollout in phase rolled_back"),
])
def test_invalid_transitions(make_state, transition, message):
    with pytest.raises(RolloutError, match=message):
        transition(make_state())


@pytest.mark.parametrize(("build", "message"), [
    (lambda: rolling(0), "batch_ratio"),
    (lambda: rolling(1.5), "batch_ratio"),
    (lambda: canary(0), "canary count"),
    (lambda: start(canary(6), OLD, NEW, 5), "6 canaries exceed 5 replicas"),
    (lambda: start(rolling(0.5), OLD, OLD, 5), "already the old one"),
    (lambda: start(rolling(0.5), OLD, NEW, 0), "replicas must be >= 1"),
])
def test_bad_rollouts(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_as_desired_feeds_the_reconciler():
    step = next_step(start(rolling(0.25), OLD, NEW, 10), Observed(0, 10))
    assert as_desired("api", step) == [DesiredService("api", OLD, 7), DesiredService("api", NEW, 3)]
