"""Whole decisions: where containers go, how later picks see earlier ones, and how a refusal reads.

Most cases run against both placers: the indexed engine must decide exactly as the reference.
"""
from __future__ import annotations

import random
from collections import Counter

import pytest

from scheduler.placement import (
    PROFILES, HostSnapshot, Placer, Profile, ReferencePlacer, Rejection, place, place_replicas,
)
from tests.unit.scheduler.builders import GiB, host, request

PLACERS = [pytest.param(Placer, id="engine"), pytest.param(ReferencePlacer, id="reference")]


@pytest.mark.parametrize("placer", PLACERS)
def test_explains_a_refusal_by_counting_hosts_per_reason(placer):
    hosts = [host(1, alive=False), host(2, alive=False), host(3, alive=False),
             host(4, cpus=4.0, allocated_cpus=3.0), host(5, cpus=2.0, allocated_cpus=0.5)]
    decision = placer(hosts).place(request(cpus=2.0))
    assert not decision.placed
    assert decision.host_id is None and decision.score is None
    assert decision.explanation == "0 of 5 hosts fit: 3 down, 2 lack 2.0 CPUs"
    assert decision.rejections == Counter({Rejection("liveness", "down"): 3,
                                           Rejection("resource_fit", "lack 2.0 CPUs"): 2})


@pytest.mark.parametrize("placer", PLACERS)
def test_explanation_lists_every_reason_largest_first(placer):
    hosts = [host(1, cluster="batch"), host(2, cluster="batch"), host(3, admin_state="paused"),
             host(4, admin_state="draining"), host(5, admin_state="maintenance"),
             host(6, labels={"disk": "hdd"}), host(7, labels={"disk": "hdd"}), host(8, labels={"disk": "hdd"}),
             host(9, labels={"disk": "ssd"}, used_ports=frozenset({8080})),
             host(10, labels={"disk": "ssd"}, memory=GiB // 2),
             host(11, labels={"disk": "ssd"}, service_counts={"api": 1})]
    wanted = request(cluster="web", constraints=["disk==ssd"], ports=frozenset({8080}), max_per_host=1)
    decision = placer(hosts).place(wanted)
    assert decision.explanation == (
        "0 of 11 hosts fit: 3 label disk==ssd not met, 2 not in cluster web, 1 already 1 of service api on host, "
        "1 draining, 1 in maintenance, 1 lack 1 GiB memory, 1 paused, 1 port 8080 in use")
    assert sum(decision.rejections.values()) == 11


def test_explains_an_empty_inventory():
    decision = Placer([]).place(request())
    assert decision.explanation == "0 of 0 hosts fit: no hosts known"
    assert place(request(), []).explanation == "0 of 0 hosts fit: no hosts known"


@pytest.mark.parametrize("placer", PLACERS)
def test_a_placed_decision_names_the_host_and_its_scores(placer):
    decision = placer([host(1, allocated_cpus=8.0), host(2)]).place(request(image="api:1"))
    assert decision.placed
    assert (decision.host_id, decision.host_name) == (2, "h02")
    assert set(decision.breakdown) == {"least_allocated", "image_locality", "idc_balance"}
    assert decision.breakdown["image_locality"] == 0.0
    assert decision.score == pytest.approx((decision.breakdown["least_allocated"] + 100.0) / 2.2)
    assert decision.explanation.startswith("placed on h02 (score ")
    assert not decision.rejections


@pytest.mark.parametrize("placer", PLACERS)
def test_replicas_with_one_per_host_land_on_different_hosts(placer):
    hosts = [host(number) for number in range(1, 4)]
    decisions = placer(hosts).place_replicas(request(max_per_host=1), 3)
    assert [decision.placed for decision in decisions] == [True, True, True]
    assert len({decision.host_id for decision in decisions}) == 3


@pytest.mark.parametrize("placer", PLACERS)
def test_replicas_stop_at_the_first_that_fits_nowhere_and_say_why(placer):
    hosts = [host(1, cpus=4.0), host(2, cpus=2.0, allocated_cpus=1.0)]
    decisions = placer(hosts).place_replicas(request(cpus=1.0), 10)
    assert [decision.placed for decision in decisions] == [True] * 5 + [False]
    assert Counter(decision.host_id for decision in decisions[:5]) == {1: 4, 2: 1}
    assert decisions[-1].explanation == "0 of 2 hosts fit: 2 lack 1.0 CPUs"


@pytest.mark.parametrize("placer", PLACERS)
def test_later_picks_see_ports_taken_by_earlier_ones(placer):
    decisions = placer([host(1), host(2)]).place_replicas(request(ports=frozenset({8080})), 3)
    assert {decisions[0].host_id, decisions[1].host_id} == {1, 2}
    assert decisions[2].explanation == "0 of 2 hosts fit: 2 port 8080 in use"


@pytest.mark.parametrize("placer", PLACERS)
def test_later_picks_see_idc_limits_reached_by_earlier_ones(placer):
    hosts = [host(1, idc="bj"), host(2, idc="bj"), host(3, idc="sh")]
    decisions = placer(hosts).place_replicas(request(max_per_idc=1), 3)
    idc_of = {snapshot.id: snapshot.idc for snapshot in hosts}
    assert sorted(idc_of[decision.host_id] for decision in decisions[:2]) == ["bj", "sh"]
    assert decisions[2].explanation == (
        "0 of 3 hosts fit: 2 already 1 of service api in idc bj, 1 already 1 of service api in idc sh")


@pytest.mark.parametrize("placer", PLACERS)
def test_the_working_copy_accounts_for_each_pick(placer):
    engine = placer([host(1, used_ports=frozenset({22}), service_counts={"api": 2})])
    engine.place(request(cpus=1.5, memory=2 * GiB, ports=frozenset({8080}), image="api:1"))
    engine.place(request(cpus=0.25, memory=GiB, service="web", image="web:3"))
    now = engine.current(1)
    assert isinstance(now, HostSnapshot)
    assert (now.allocated_cpus, now.allocated_memory) == (1.75, 3 * GiB)
    assert now.used_ports == {22, 8080}
    assert now.images == frozenset()  # only pulled so far: not counted as present
    assert now.service_counts == {"api": 3, "web": 1}


@pytest.mark.parametrize("placer", PLACERS)
def test_spread_and_binpack_choose_differently(placer):
    hosts = [host(1, allocated_cpus=8.0, allocated_memory=16 * GiB), host(2)]
    assert placer(hosts).place(request(strategy="spread")).host_id == 2
    assert placer(hosts).place(request(strategy="binpack")).host_id == 1


@pytest.mark.parametrize("placer", PLACERS)
def test_binpack_fills_one_host_before_the_next(placer):
    hosts = [host(1, cpus=4.0), host(2, cpus=4.0), host(3, cpus=4.0)]
    decisions = placer(hosts).place_replicas(request(cpus=1.0, strategy="binpack"), 8)
    assert [decision.host_id for decision in decisions] == [1, 1, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize("placer", PLACERS)
def test_spread_takes_turns_between_idcs(placer):
    hosts = [host(1, idc="bj"), host(2, idc="bj"), host(3, idc="sh", allocated_cpus=8.0)]
    decisions = placer(hosts).place_replicas(request(), 4)
    idcs = ["sh" if decision.host_id == 3 else "bj" for decision in decisions]
    # Load alone would always pick bj; balancing IDCs sends the second replica to the busier sh.
    assert idcs == ["bj", "sh", "bj", "sh"]


@pytest.mark.parametrize("placer", PLACERS)
def test_a_host_holding_the_image_wins_among_equals(placer):
    hosts = [host(1), host(2, images=frozenset({"api:1"})), host(3)]
    assert placer(hosts).place(request(image="api:1")).host_id == 2
    assert placer(hosts).place(request(image="api:2")).host_id == 1


@pytest.mark.parametrize("placer", PLACERS)
def test_ties_go_to_the_first_host_by_name_whatever_the_input_order(placer):
    hosts = [host(number, name=f"node-{letter}") for number, letter in zip(range(1, 5), "dbca")]
    for order in (hosts, hosts[::-1], sorted(hosts, key=lambda snap: snap.id)):
        assert placer(order).place(request()).host_name == "node-a"


@pytest.mark.parametrize("placer", PLACERS)
def test_the_same_input_gives_the_same_decisions(placer):
    hosts = random_fleet(random.Random(3), 60)
    requests = random_requests(random.Random(4), 80)
    first = [decision_key(placer(hosts).place(wanted)) for wanted in requests]
    shuffled = hosts[:]
    random.Random(5).shuffle(shuffled)
    second = [decision_key(placer(shuffled).place(wanted)) for wanted in requests]
    assert first == second


@pytest.mark.parametrize(("host_facts", "request_fields", "fits"), [
    ({"labels": {"disk": "ssd"}}, {"constraints": ["disk==ssd"]}, True),
    ({"labels": {"disk": "hdd"}}, {"constraints": ["disk==ssd"]}, False),
    ({"cpus": 12.0}, {"min_cpus": 32}, False),
    ({"cpus": 32.0}, {"min_cpus": 32}, True),
    ({"pool": "green"}, {"cluster": "web", "pool": "blue"}, False),
    ({"admin_state": "draining"}, {}, False),
])
@pytest.mark.parametrize("placer", PLACERS)
def test_static_requirements(placer, host_facts, request_fields, fits):
    assert placer([host(1, **host_facts)]).place(request(**request_fields)).placed is fits


@pytest.mark.parametrize("count", [2, 12])  # below and above the size where the engine takes over
def test_place_and_place_replicas_functions(count):
    hosts = [host(number, allocated_cpus=float(number)) for number in range(count)]
    assert place(request(), hosts).host_id == 0
    decisions = place_replicas(request(max_per_host=1), count, hosts)
    assert [decision.host_id for decision in decisions] == list(range(count))
    assert place(request(), hosts).host_id == 0  # the functions never change their input


def test_duplicate_host_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate host id 1"):
        Placer([host(1), host(1, name="other")])


@pytest.mark.parametrize(("fields", "message"), [
    ({"strategy": "random"}, "strategy 'random' is not one of"),
    ({"cpus": -1.0}, "cannot be negative"),
    ({"max_per_host": 0}, "max_per_host must be at least 1"),
    ({"ports": frozenset({70000})}, "host ports must be within 1..65535"),
])
def test_bad_requests_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        request(**fields)


def test_the_engine_refuses_a_profile_it_cannot_index():
    mixed = Profile.build("mixed", ["liveness", "admin_state"], [("least_allocated", 1.0), ("most_allocated", 1.0)])
    with pytest.raises(ValueError, match="profile mixed cannot be indexed"):
        Placer([host(1)], {"spread": mixed})
    assert ReferencePlacer([host(1)], {"spread": mixed}).place(request()).host_id == 1


# The engine against the reference on random fleets: every decision, placed or not, must be equal.

def random_fleet(rng: random.Random, count: int) -> list[HostSnapshot]:
    shapes = [(4.0, 8 * GiB), (12.0, 16 * GiB), (32.0, 32 * GiB), (64.0, 256 * GiB)]
    fleet = []
    for number in range(count):
        cpus, memory = rng.choice(shapes)
        fleet.append(host(
            number, name=f"n{rng.randrange(10_000):04d}-{number}", cluster=rng.choice(["web", "batch"]),
            pool=rng.choice(["blue", "green"]), idc=rng.choice(["bj", "sh", "gz"]), cpus=cpus, memory=memory,
            labels={key: value for key, value in (("disk", rng.choice(["ssd", "hdd"])),
                                                  ("gpu", rng.choice(["a100", None, None, None])),
                                                  ("rack", f"r{number // 4}")) if value},
            alive=rng.random() > 0.1,
            admin_state=rng.choice(["active"] * 8 + ["paused", "draining"]),
            allocated_cpus=rng.choice([0.0, 0.0, cpus / 2, cpus / 4]),
            allocated_memory=rng.choice([0, 0, memory // 2, memory // 3]),
            used_ports=frozenset(rng.sample([80, 8080, 9000], rng.randrange(2))),
            images=frozenset(rng.sample(["api:1", "web:1", "job:1"], rng.randrange(3))),
            service_counts={rng.choice(["api", "web"]): rng.randrange(3)},
        ))
    return fleet


def random_requests(rng: random.Random, count: int):
    sizes = [(0.25, GiB // 4), (1.0, GiB), (2.0, 4 * GiB), (8.0, 16 * GiB)]
    requests = []
    for _ in range(count):
        cpus, memory = rng.choice(sizes)
        service = rng.choice(["api", "web", "job"])
        requests.append(request(
            service=service, cpus=cpus, memory=memory,
            cluster=rng.choice([None, None, "web"]), pool=rng.choice([None, None, None, "blue"]),
            constraints=rng.choice([[], [], ["disk==ssd"], ["gpu in (a100)"], ["!gpu", "disk"]]),
            min_cpus=rng.choice([None, None, None, 32.0]),
            ports=rng.choice([frozenset(), frozenset(), frozenset({8080})]),
            max_per_host=rng.choice([None, 1, 2]), max_per_idc=rng.choice([None, None, 6]),
            image=rng.choice([None, f"{service}:1"]), strategy=rng.choice(["spread", "spread", "binpack"]),
        ))
    return requests


def decision_key(decision):
    return decision.host_id, decision.score, decision.explanation, decision.rejections


@pytest.mark.parametrize("seed", range(6))
def test_the_engine_decides_exactly_as_the_reference(seed):
    rng = random.Random(seed)
    hosts = random_fleet(rng, rng.choice([40, 120, 300]))
    requests = random_requests(rng, 400)
    engine, reference = Placer(hosts), ReferencePlacer(hosts)
    outcomes = Counter()
    for wanted in requests:
        engine_decision, reference_decision = engine.place(wanted), reference.place(wanted)
        assert decision_key(engine_decision) == decision_key(reference_decision), wanted
        outcomes[engine_decision.placed] += 1
    assert outcomes[True] > 50 and outcomes[False] > 5  # both paths were exercised
    for snapshot in hosts:
        assert engine.current(snapshot.id) == reference.current(snapshot.id)


def test_profiles_registry_matches_strategies():
    assert set(PROFILES) == {"spread", "binpack"}


@pytest.mark.parametrize("strategy", ["spread", "binpack"])
@pytest.mark.parametrize("per_host", [1, 2])
def test_anti_affinity_at_scale_matches_the_reference(strategy, per_host):
    """Hosts at a service's limit pile up in the engine's lists; it jumps over runs of them."""
    rng = random.Random(per_host)
    hosts = [host(number, idc=rng.choice(["bj", "sh"]), cpus=rng.choice([16.0, 32.0]),
                  allocated_cpus=rng.choice([0.0, 0.0, 2.0, 4.0]),
                  images=frozenset({"api:1"}) if rng.random() < 0.2 else frozenset())
             for number in range(150)]
    wanted = request(cpus=0.5, memory=GiB // 2, max_per_host=per_host, image="api:1", strategy=strategy)
    other = request(service="web", cpus=1.0, image="web:1", strategy=strategy)
    engine, reference = Placer(hosts), ReferencePlacer(hosts)
    refused = 0
    for step in range(150 * per_host * 4 // 3 + 12):  # enough api replicas to fill every host
        current = other if step % 4 == 3 else wanted
        decision = engine.place(current)
        assert decision_key(decision) == decision_key(reference.place(current)), step
        refused += not decision.placed
    assert refused > 0
    assert Counter(engine.current(snapshot.id).service_counts.get("api", 0) for snapshot in hosts) == {per_host: 150}


@pytest.mark.parametrize("placer", PLACERS)
def test_replicas_spread_instead_of_following_the_image_they_just_pulled(placer):
    hosts = [host(1), host(2), host(3)]
    decisions = placer(hosts).place_replicas(request(cpus=0.01, memory=8 * 2**20, image="x:1"), 3)
    assert sorted(d.host_id for d in decisions) == [1, 2, 3]


@pytest.mark.parametrize("placer", PLACERS)
def test_an_image_already_on_a_host_still_draws_the_next_container(placer):
    hosts = [host(1), host(2, images=frozenset({"x:1"}))]
    assert placer(hosts).place(request(cpus=0.01, memory=8 * 2**20, image="x:1")).host_id == 2


def test_the_engine_stays_exact_if_picks_ever_count_their_image_as_present(monkeypatch):
    """ClusterState.commit leaves a pulled image out today. Should that change, a host joins an
    image list below the bounds the engine cached for it; the engine must drop them."""
    from scheduler.placement.state import ClusterState

    original = ClusterState.commit

    def commit_counting_the_image(self, host, request):
        original(self, host, request)
        if request.image:
            host.images.add(request.image)

    monkeypatch.setattr(ClusterState, "commit", commit_counting_the_image)

    def loaded(share: float) -> dict:  # CPU and memory both this share in use
        return {"allocated_cpus": 16.0 * share, "allocated_memory": int(32 * GiB * share)}

    taken = frozenset({8080})
    hosts = [host(1, **loaded(0.1), used_ports=taken), host(2, **loaded(0.2), used_ports=taken, labels={"role": "b"}),
             host(3, **loaded(0.45), images=frozenset({"x:1"}))]
    requests = [request(cpus=0.25, image="x:1", ports=taken),  # only h03 has the port: caches x:1 bounds
                request(service="batch", cpus=0.25, image="x:1", constraints=["role==b"]),  # h02 gets x:1
                request(cpus=0.25, image="x:1")]  # the image now outweighs h02's extra load over h01
    engine, reference = Placer(hosts), ReferencePlacer(hosts)
    chosen = [engine.place(wanted).host_id for wanted in requests]
    assert chosen == [reference.place(wanted).host_id for wanted in requests] == [3, 2, 2]
