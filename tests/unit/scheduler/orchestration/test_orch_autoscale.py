"""The autoscaler's decision: CPU utilisation on either basis, and each scaling rule on its own."""
from __future__ import annotations

import pytest

from scheduler.orchestration.autoscale import AutoscalingPolicy, Recommendation, Sample, cpu_utilisation, decide

NOW = 10_000.0
# "keep CPU under 50%; above it, double the containers"
POLICY = AutoscalingPolicy(min_replicas=2, max_replicas=10, target_cpu_percent=50, cpu_basis="core",
                           scale_up_factor=2.0, cooldown_s=300, scale_down_stabilization_s=600)


def at(*percents: float, limit: float | None = None) -> list[Sample]:
    """One sample per instance i0, i1, ... at these % of one core."""
    return [Sample(f"i{i}", p, limit) for i, p in enumerate(percents)]


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


@pytest.mark.parametrize(("current", "samples", "desired", "reason"), [
    # above target: double...
    (2, at(82, 82), 4, "CPU 82% of one core > target 50%: 2 -> 4"),
    (3, at(60, 60, 60), 6, "CPU 60% of one core > target 50%: 3 -> 6"),
    # ...unless the proportional count is higher: one step for a big spike
    (2, at(250, 250), 10, "CPU 250% of one core > target 50%: 2 -> 10"),
    (2, at(240, 240), 10, "CPU 240% of one core > target 50%: 2 -> 10"),
    (2, at(110, 110), 5, "CPU 110% of one core > target 50%: 2 -> 5"),
    # capped at max
    (6, at(90), 10, "CPU 90% of one core > target 50%: 6 -> 10"),
    (10, at(90), 10, "CPU 90% of one core > target 50%, but already at maximum 10: keeping 10"),
    # the ±10% band does nothing
    (4, at(54.9), 4, "CPU 55% of one core within 10% of target 50%: keeping 4"),
    (4, at(45.1), 4, "CPU 45% of one core within 10% of target 50%: keeping 4"),
    (4, at(50), 4, "CPU 50% of one core within 10% of target 50%: keeping 4"),
    # below: proportional, floored at min
    (8, at(20), 4, "CPU 20% of one core < target 50%: 8 -> 4"),
    (8, at(1), 2, "CPU 1% of one core < target 50%: 8 -> 2"),
    (2, at(1), 2, "CPU 1% of one core < target 50%, but already at minimum 2: keeping 2"),
    # no samples: no decision
    (4, [], 4, "no metrics: keeping 4"),
    # replica count outside the bounds is fixed first, metrics or not
    (1, [], 2, "1 replicas below minimum 2: 1 -> 2"),
    (12, at(90), 10, "12 replicas above maximum 10: 12 -> 10"),
])
def test_rules(current, samples, desired, reason):
    decision = decide(POLICY, current, samples, NOW)
    assert (decision.desired_replicas, decision.reason) == (desired, reason)


@pytest.mark.parametrize(("basis", "desired", "reason"), [
    # 50% of one core with a 0.5-core limit is 100% of the limit: scale up
    ("limit", 4, "CPU 100% of limit > target 50%: 2 -> 4"),
    # the same reading against one core is right on target: hold
    ("core", 2, "CPU 50% of one core within 10% of target 50%: keeping 2"),
])
def test_basis(basis, desired, reason):
    policy = AutoscalingPolicy(2, 10, 50, cpu_basis=basis)
    decision = decide(policy, 2, at(50, 50, limit=0.5), NOW)
    assert (decision.desired_replicas, decision.reason) == (desired, reason)


@pytest.mark.parametrize(("last_scaled_at", "samples", "desired", "direction"), [
    (NOW - 100, at(90, 90), 2, "none"),  # inside the cooldown: hold, up...
    (NOW - 100, at(5, 5), 2, "none"),  # ...or down
    (NOW - 300, at(90, 90), 4, "up"),  # cooldown over
    (None, at(90, 90), 4, "up"),
])
def test_cooldown_after_scale_up(last_scaled_at, samples, desired, direction):
    policy = AutoscalingPolicy(1, 10, 50, cpu_basis="core", cooldown_s=300, scale_down_stabilization_s=0)
    decision = decide(policy, 2, samples, NOW, last_scaled_at)
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
    decision = decide(POLICY, 8, at(20), NOW, None, history)
    assert decision.desired_replicas == desired
    assert decision.reason.endswith(reason_end)
    assert decision.recommendation == 4  # what the metrics alone say, for the caller to record


def test_a_spike_then_quiet_scales_down_only_after_the_window():
    """A service driven by decide() and its own recommendations, one minute apart."""
    policy = AutoscalingPolicy(2, 10, 50, cpu_basis="core", cooldown_s=120, scale_down_stabilization_s=300)
    replicas, last_up, history, seen = 2, None, [], []
    load = [90, 90] + [10] * 10  # % per instance at 2 replicas: total work 180, then 20
    for minute, per_two in enumerate(load):
        now = minute * 60.0
        per_instance = per_two * 2 / replicas
        decision = decide(policy, replicas, at(*[per_instance] * replicas), now, last_up, history)
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
