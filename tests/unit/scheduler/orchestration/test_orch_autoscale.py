"""The autoscaler's decision: CPU utilisation on either basis, and each scaling rule on its own."""
from __future__ import annotations

import pytest

from scheduler.orchestration.autoscale import (PLACEMENT_GRACE_S, AutoscalingPolicy, Observed, Recommendation,
                                               Sample, cpu_utilisation, decide, placement_problem)

NOW = 10_000.0
# "keep CPU under 50%; above it, double the containers"
POLICY = AutoscalingPolicy(min_replicas=2, max_replicas=10, target_cpu_percent=50, cpu_basis="core",
                           scale_up_factor=2.0, cooldown_s=300, scale_down_stabilization_s=600)


def at(*percents: float, limit: float | None = None) -> list[Sample]:
    """One sample per instance i0, i1, ... at these % of one core."""
    return [Sample(f"i{i}", p, limit) for i, p in enumerate(percents)]


def names(count: int) -> list[str]:
    return [f"i{i}" for i in range(count)]


def even(desired: int, percent: float | None, ready: int | None = None, **fields) -> Observed:
    """`ready` instances (default: all desired), each sampled at `percent` (None: no samples)."""
    ready = desired if ready is None else ready
    samples = [] if percent is None else at(*[percent] * ready)
    return Observed(desired, names(ready), samples, **fields)


@pytest.mark.parametrize(("samples", "basis", "expected"), [
    (at(50, limit=0.5), "limit", 100.0),  # half a core used of a half-core limit: all of it
    (at(50, limit=0.5), "core", 50.0),
    (at(150, limit=2.0), "limit", 75.0),
    (at(150, limit=2.0), "core", 150.0),  # docker stats goes past 100% on more than one core
    (at(20, 40, 60), "core", 40.0),
    # each instance is averaged first, so a chatty instance does not outweigh the rest
    ([Sample("a", 10), Sample("a", 30), Sample("a", 20), Sample("b", 80)], "core", 50.0),
    # no limit, no denominator: left out under 'limit', counted under 'core'
    ([Sample("a", 40, 1.0), Sample("b", 90, None)], "limit", 40.0),
    ([Sample("a", 40, 1.0), Sample("b", 90, None)], "core", 65.0),
    ([], "core", None),
    ([Sample("a", 40, None)], "limit", None),
])
def test_cpu_utilisation(samples, basis, expected):
    assert cpu_utilisation(samples, basis) == expected


@pytest.mark.parametrize(("observed", "desired", "reason"), [
    # above target: double...
    (even(2, 82), 4, "CPU 82% of one core > target 50%: 2 -> 4"),
    (even(3, 60), 6, "CPU 60% of one core > target 50%: 3 -> 6"),
    # ...unless the proportional count is higher: one step for a big spike
    (even(2, 250), 10, "CPU 250% of one core > target 50%: 2 -> 10"),
    (even(2, 240), 10, "CPU 240% of one core > target 50%: 2 -> 10"),
    (even(2, 110), 5, "CPU 110% of one core > target 50%: 2 -> 5"),
    # capped at max
    (even(6, 90), 10, "CPU 90% of one core > target 50%: 6 -> 10"),
    (even(10, 90), 10, "CPU 90% of one core > target 50%, but already at maximum 10: keeping 10"),
    # the ±10% band does nothing
    (even(4, 54.9), 4, "CPU 55% of one core within 10% of target 50%: keeping 4"),
    (even(4, 45.1), 4, "CPU 45% of one core within 10% of target 50%: keeping 4"),
    (even(4, 50), 4, "CPU 50% of one core within 10% of target 50%: keeping 4"),
    # below: proportional, floored at min
    (even(8, 20), 4, "CPU 20% of one core < target 50%: 8 -> 4"),
    (even(8, 1), 2, "CPU 1% of one core < target 50%: 8 -> 2"),
    (even(2, 1), 2, "CPU 1% of one core < target 50%, but already at minimum 2: keeping 2"),
    # no samples: no decision
    (even(4, None), 4, "no metrics: keeping 4"),
    (Observed(4), 4, "no metrics: keeping 4"),
    # replica count outside the bounds is fixed first, metrics or not
    (even(1, None), 2, "1 replicas below minimum 2: 1 -> 2"),
    (even(12, 90), 10, "12 replicas above maximum 10: 12 -> 10"),
])
def test_rules(observed, desired, reason):
    decision = decide(POLICY, observed, NOW)
    assert (decision.desired_replicas, decision.reason) == (desired, reason)


@pytest.mark.parametrize(("observed", "desired", "reason"), [
    # 8 asked for, 2 ready and busy: the base is the 2, so 2 x 2 = 4 is not more than 8: wait
    (even(8, 90, ready=2), 8,
     "CPU 90% of one core on 2 ready of 8 > target 50%, but waiting for 6 more to be ready: keeping 8"),
    # ...a big spike on the 2 still asks for more than 8: ceil(2 x 300 / 50) = 12, capped at 10
    (even(8, 300, ready=2), 10, "CPU 300% of one core on 2 ready of 8 > target 50%: 8 -> 10"),
    # 2 ready of 4, both idle: the base is the 2 ready; the recommendation is the minimum
    (even(4, 10, ready=2), 2, "CPU 10% of one core on 2 ready of 4 < target 50%: 4 -> 2"),
    # more ready than desired (a scale-down under way): no scale-down below the desired
    (even(3, 40, ready=5), 3,
     "CPU 40% of one core on 5 ready of 3 < target 50%, but 4 would not be fewer: keeping 3"),
    # samples of instances that are not ready (starting, unhealthy) do not count
    (Observed(4, names(2), at(90, 90, 0, 0)), 4,
     "CPU 90% of one core on 2 ready of 4 > target 50%, but waiting for 2 more to be ready: keeping 4"),
    # nothing ready: nothing to judge by
    (Observed(4, [], at(90, 90)), 4, "no metrics: keeping 4"),
])
def test_the_base_is_the_ready_instances(observed, desired, reason):
    decision = decide(POLICY, observed, NOW)
    assert (decision.desired_replicas, decision.reason) == (desired, reason)


def test_a_service_that_cannot_start_its_replicas_stops_doubling():
    """The old bug: decide() on desired replicas kept doubling 2 -> 4 -> 8 -> 10 while one ran."""
    policy = AutoscalingPolicy(1, 10, 50, cpu_basis="core", cooldown_s=0)
    desired, seen = 2, []
    for minute in range(5):
        decision = decide(policy, Observed(desired, ["i0"], at(100)), minute * 60.0)
        desired = decision.desired_replicas
        seen.append(desired)
    assert seen == [2, 2, 2, 2, 2]


@pytest.mark.parametrize(("observed", "desired", "why"), [
    # the scheduler says no host fits: say so, ask for nothing more
    (even(4, 90, unschedulable="0 of 3 hosts fit: 3 lack 2 CPUs"), 4,
     "but it cannot be placed (0 of 3 hosts fit: 3 lack 2 CPUs): not asking for more"),
    # desired above running for longer than the grace: stuck, whatever the status says
    (Observed(4, names(3), at(300, 300, 300), changed_at=NOW - PLACEMENT_GRACE_S - 1), 4,
     "but only 3 of 4 replicas run 121s after the last change: not asking for more"),
    # ...within the grace it is still starting: a spike is met
    (Observed(4, names(3), at(300, 300, 300), changed_at=NOW - 60), 10, "-> 10"),
    # running but not ready counts as running: it is placed, only not healthy (yet)
    (Observed(4, names(2), at(300, 300), running=4, changed_at=NOW - 1000), 10, "-> 10"),
])
def test_a_service_that_cannot_be_placed_asks_for_no_more(observed, desired, why):
    decision = decide(POLICY, observed, NOW)
    assert decision.desired_replicas == desired and why in decision.reason


def test_a_service_that_cannot_be_placed_still_scales_down():
    decision = decide(POLICY, even(8, 5, ready=3, unschedulable="no host fits"), NOW)
    assert (decision.desired_replicas, decision.direction) == (2, "down")


@pytest.mark.parametrize(("observed", "problem"), [
    (Observed(2, names(2), changed_at=0), None),
    (Observed(3, names(2), changed_at=NOW - 10), None),
    (Observed(3, names(2)), None),  # never changed: no clock to judge by
    (Observed(3, names(2), changed_at=0), "only 2 of 3 replicas run 10000s after the last change"),
    (Observed(2, names(2), unschedulable="x" * 500), "it cannot be placed (" + "x" * 120 + ")"),
])
def test_placement_problem(observed, problem):
    assert placement_problem(observed, NOW) == problem


@pytest.mark.parametrize(("observed", "desired", "reason"), [
    # scaling up: an instance without a sample counts as idle, so 4 ready, 2 at 90%: 45%, hold
    (Observed(4, names(4), at(90, 90)), 4,
     "CPU 90% of one core on 2 sampled of 4 ready, but 45% counting 2 without a sample at 0%: keeping 4"),
    # ...3 at 90% and one unsampled: 67.5% still asks for more, from 4
    (Observed(4, names(4), at(90, 90, 90)), 8,
     "CPU 68% of one core, 1 without a sample counted at 0% > target 50%: 4 -> 8"),
    # scaling down: an instance without a sample counts as exactly the target
    # (10 + 3 x 50) / 4 = 40%: still low, but ceil(4 x 40 / 50) = 4 is no fewer
    (Observed(4, names(4), at(10)), 4, "CPU 40% of one core, 3 without a sample counted at 50%"
     " < target 50%, but 4 would not be fewer: keeping 4"),
    # (4 x 10 + 4 x 50) / 8 = 30%: down to 5, where the 4 sampled alone would say 2
    (Observed(8, names(8), at(10, 10, 10, 10)), 5,
     "CPU 30% of one core, 4 without a sample counted at 50% < target 50%: 8 -> 5"),
    # 4 ready, 1 at 40% and 3 unsampled: (40 + 150) / 4 = 47.5%, within the band: hold
    (Observed(4, names(4), at(40)), 4,
     "CPU 40% of one core on 1 sampled of 4 ready, but 48% counting 3 without a sample at 50%: keeping 4"),
])
def test_missing_samples_count_conservatively(observed, desired, reason):
    policy = AutoscalingPolicy(2, 10, 50, cpu_basis="core", cooldown_s=0, scale_down_stabilization_s=0)
    decision = decide(policy, observed, NOW)
    assert (decision.desired_replicas, decision.reason) == (desired, reason)


@pytest.mark.parametrize(("basis", "desired", "reason"), [
    # 50% of one core with a 0.5-core limit is 100% of the limit: scale up
    ("limit", 4, "CPU 100% of limit > target 50%: 2 -> 4"),
    # the same reading against one core is right on target: hold
    ("core", 2, "CPU 50% of one core within 10% of target 50%: keeping 2"),
])
def test_basis(basis, desired, reason):
    policy = AutoscalingPolicy(2, 10, 50, cpu_basis=basis)
    decision = decide(policy, Observed(2, names(2), at(50, 50, limit=0.5)), NOW)
    assert (decision.desired_replicas, decision.reason) == (desired, reason)


@pytest.mark.parametrize(("last_scaled_at", "percent", "desired", "direction"), [
    (NOW - 100, 90, 2, "none"),  # inside the cooldown: no further scale-up
    (NOW - 100, 5, 1, "down"),  # ...but the cooldown does not hold a scale-down
    (NOW - 300, 90, 4, "up"),  # cooldown over
    (None, 90, 4, "up"),
])
def test_cooldown_holds_only_scale_ups(last_scaled_at, percent, desired, direction):
    policy = AutoscalingPolicy(1, 10, 50, cpu_basis="core", cooldown_s=300, scale_down_stabilization_s=0)
    decision = decide(policy, even(2, percent), NOW, last_scaled_at)
    assert (decision.desired_replicas, decision.direction) == (desired, direction)
    if direction == "none":
        assert "cooling down 200s more after scaling up" in decision.reason


@pytest.mark.parametrize(("history", "desired", "reason_end"), [
    ([], 4, "8 -> 4"),
    # a recent higher recommendation holds the scale-down...
    ([Recommendation(NOW - 60, 8)], 8, "but 8 recommended within the last 600s: keeping 8"),
    ([Recommendation(NOW - 600, 9)], 8, "but 9 recommended within the last 600s: keeping 8"),
    # ...or limits it to the highest recent one
    ([Recommendation(NOW - 60, 6), Recommendation(NOW - 30, 5)], 6, "8 -> 6"),
    # recommendations older than the window no longer count
    ([Recommendation(NOW - 601, 9)], 4, "8 -> 4"),
])
def test_scale_down_stabilisation(history, desired, reason_end):
    decision = decide(POLICY, even(8, 20), NOW, None, history)
    assert decision.desired_replicas == desired
    assert decision.reason.endswith(reason_end)
    assert decision.recommendation == 4  # what the metrics alone say, for the caller to record


def test_a_spike_then_quiet_scales_down_only_after_the_window():
    """A service driven by decide() and its own recommendations, one minute apart; new
    replicas are ready by the next minute."""
    policy = AutoscalingPolicy(2, 10, 50, cpu_basis="core", cooldown_s=120, scale_down_stabilization_s=300)
    replicas, last_up, history, seen = 2, None, [], []
    load = [90, 90] + [10] * 10  # % per instance at 2 replicas: total work 180, then 20
    for minute, per_two in enumerate(load):
        now = minute * 60.0
        decision = decide(policy, even(replicas, per_two * 2 / replicas), now, last_up, history)
        history.append(Recommendation(now, decision.recommendation))
        if decision.direction == "up":
            last_up = now
        replicas = decision.desired_replicas
        seen.append(replicas)
    # up at once; then held while minute 1's recommendation of 4 is within 300s; then down to min
    assert seen == [4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2]


@pytest.mark.parametrize(("fields", "message"), [
    (dict(min_replicas=0, max_replicas=3), "min_replicas"),
    (dict(min_replicas=4, max_replicas=3), "min_replicas"),
    (dict(target_cpu_percent=0), "target_cpu_percent"),
    (dict(cpu_basis="host"), "cpu_basis"),
    (dict(scale_up_factor=1.0), "scale_up_factor"),
    (dict(tolerance=1.0), "tolerance"),
])
def test_bad_policies(fields, message):
    with pytest.raises(ValueError, match=message):
        AutoscalingPolicy(**{"min_replicas": 1, "max_replicas": 5, "target_cpu_percent": 50, **fields})
