"""Each scorer on its own, the shared normaliser, and how a profile weighs them."""
from __future__ import annotations

import random

import pytest

from scheduler.placement.framework import MAX_SCORE, PlacementContext, normalise
from scheduler.placement.profiles import PROFILES, Profile
from scheduler.placement.scorers import SCORERS
from scheduler.placement.state import HostState
from tests.unit.scheduler.builders import GiB, NO_CONTEXT, host, request, working


def score(scorer_name: str, host_facts: dict, request_fields: dict,
          context: PlacementContext = NO_CONTEXT) -> float:
    scorer = SCORERS[scorer_name]
    wanted = request(**request_fields)
    return normalise(scorer.raw(working(**host_facts), wanted, context), *scorer.bounds(wanted, context))


@pytest.mark.parametrize(("raw", "low", "high", "expected"), [
    (0.0, 0.0, 1.0, 0.0),
    (0.25, 0.0, 1.0, 25.0),
    (1.0, 0.0, 1.0, 100.0),
    (-2.0, -4.0, 0.0, 50.0),
    (1.5, 0.0, 1.0, 100.0),   # clamped
    (-0.5, 0.0, 1.0, 0.0),    # clamped
    (7.0, 3.0, 3.0, MAX_SCORE),  # no spread between hosts: all score the maximum
])
def test_normalise(raw, low, high, expected):
    assert normalise(raw, low, high) == pytest.approx(expected)


# A 16-CPU / 32 GiB host; the request is 1 CPU / 1 GiB unless a case says otherwise.
@pytest.mark.parametrize(("host_facts", "request_fields", "least", "most"), [
    ({}, {"cpus": 0.0, "memory": 0}, 100.0, 0.0),
    ({}, {}, 100 - (1 / 16 + 1 / 32) / 2 * 100, (1 / 16 + 1 / 32) / 2 * 100),
    ({"allocated_cpus": 8.0, "allocated_memory": 16 * GiB}, {"cpus": 0.0, "memory": 0}, 50.0, 50.0),
    ({"allocated_cpus": 15.0, "allocated_memory": 31 * GiB}, {}, 0.0, 100.0),
    ({"allocated_cpus": 16.0}, {"cpus": 0.0, "memory": 0}, 50.0, 50.0),  # CPU full, memory empty
])
def test_least_and_most_allocated(host_facts, request_fields, least, most):
    assert score("least_allocated", host_facts, request_fields) == pytest.approx(least)
    assert score("most_allocated", host_facts, request_fields) == pytest.approx(most)


@pytest.mark.parametrize(("images", "image", "expected"), [
    (frozenset(), "api:1", 0.0),
    (frozenset({"api:1"}), "api:1", 100.0),
    (frozenset({"api:2"}), "api:1", 0.0),  # another tag is another image
    (frozenset({"api:1"}), None, 0.0),
])
def test_image_locality(images, image, expected):
    assert score("image_locality", {"images": images}, {"image": image}) == expected


@pytest.mark.parametrize(("idc", "idc_counts", "expected"), [
    ("bj", {}, 100.0),                      # no replicas anywhere: every IDC alike
    ("bj", {"sh": 2}, 100.0),
    ("bj", {"bj": 2, "sh": 2}, 0.0),        # balanced: alike again, at the bottom of the range
    ("bj", {"bj": 1, "sh": 4}, 75.0),
    ("sh", {"bj": 1, "sh": 4}, 0.0),
    ("gz", {"bj": 1, "sh": 4}, 100.0),
])
def test_idc_balance(idc, idc_counts, expected):
    assert score("idc_balance", {"idc": idc}, {}, PlacementContext(idc_counts)) == pytest.approx(expected)


def test_profiles_weigh_their_scorers():
    assert [scorer.name for scorer in PROFILES["spread"].scorers] == [
        "least_allocated", "image_locality", "idc_balance"]
    assert [scorer.name for scorer in PROFILES["binpack"].scorers] == ["most_allocated", "image_locality"]
    profile = Profile.build("test", ["liveness"], [("least_allocated", 3.0), ("image_locality", 1.0)])
    assert profile.total([80.0, 0.0]) == pytest.approx(60.0)
    assert profile.total([80.0, 100.0]) == pytest.approx(85.0)
    assert profile.total([100.0, 100.0]) == pytest.approx(MAX_SCORE)


@pytest.mark.parametrize(("filters", "scorers", "message"), [
    (["liveness"], [("least_allocated", 0.0)], "scorer weights must be positive"),
    (["liveness", "gravity"], [("least_allocated", 1.0)], "no plugin named gravity"),
    (["liveness"], [("newest_first", 1.0)], "no plugin named newest_first"),
])
def test_profile_refuses_bad_definitions(filters, scorers, message):
    with pytest.raises(ValueError, match=message):
        Profile.build("test", filters, scorers)


@pytest.mark.parametrize("scorer_name", ["least_allocated", "most_allocated"])
def test_load_scores_follow_host_load_exactly(scorer_name):
    """The engine's contract: on hosts of one shape, ordering by HostState.load orders these
    scores, bit for bit, even when load sums differ by one byte."""
    rng = random.Random(7)
    wanted = request(cpus=0.5, memory=700_000_001)
    states = []
    for number in range(400):
        snapshot = host(number, cpus=12.0, memory=16 * GiB,
                        allocated_cpus=rng.randrange(0, 11_000) / 1000,
                        allocated_memory=rng.choice([rng.randrange(0, 15 * GiB), 8 * GiB, 8 * GiB + 1]))
        states.append(HostState(number, snapshot))
    states.sort(key=lambda state: state.load)
    scores = [SCORERS[scorer_name].raw(state, wanted, NO_CONTEXT) for state in states]
    pairs = list(zip(scores, scores[1:]))
    if scorer_name == "least_allocated":
        assert all(earlier >= later for earlier, later in pairs)
    else:
        assert all(earlier <= later for earlier, later in pairs)
    for left, right in zip(states, states[1:]):  # equal load, equal score
        if left.load == right.load:
            assert SCORERS[scorer_name].raw(left, wanted, NO_CONTEXT) == SCORERS[scorer_name].raw(
                right, wanted, NO_CONTEXT)
