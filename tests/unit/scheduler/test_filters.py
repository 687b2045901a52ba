"""Each filter on its own: which hosts it passes, and the reason text it gives for the others."""
from __future__ import annotations

import pytest

from scheduler.placement.filters import DEFAULT_FILTERS, FILTERS
from scheduler.placement.framework import PlacementContext
from scheduler.placement.profiles import PROFILES
from tests.unit.scheduler.builders import GiB, MiB, NO_CONTEXT, request, working


def reason(filter_name: str, host_facts: dict, request_fields: dict,
           context: PlacementContext = NO_CONTEXT) -> str | None:
    rejection = FILTERS[filter_name].check(working(**host_facts), request(**request_fields), context)
    if rejection is None:
        return None
    assert rejection.filter == filter_name
    return rejection.reason


@pytest.mark.parametrize(("host_facts", "expected"), [
    ({"alive": True}, None),
    ({"alive": False}, "down"),
])
def test_liveness(host_facts, expected):
    assert reason("liveness", host_facts, {}) == expected


@pytest.mark.parametrize(("state", "expected"), [
    ("active", None),
    ("paused", "paused"),
    ("draining", "draining"),
    ("maintenance", "in maintenance"),
])
def test_admin_state(state, expected):
    assert reason("admin_state", {"admin_state": state}, {}) == expected


@pytest.mark.parametrize(("host_facts", "request_fields", "expected"), [
    ({}, {}, None),
    ({"cluster": "web"}, {"cluster": "web"}, None),
    ({"cluster": "batch"}, {"cluster": "web"}, "not in cluster web"),
    ({"pool": "blue"}, {"cluster": "web", "pool": "blue"}, None),
    ({"pool": "green"}, {"cluster": "web", "pool": "blue"}, "not in pool blue"),
    ({"cluster": "batch", "pool": "green"}, {"cluster": "web", "pool": "blue"}, "not in cluster web"),
    ({"pool": "green"}, {"pool": "blue"}, "not in pool blue"),
])
def test_cluster_pool(host_facts, request_fields, expected):
    assert reason("cluster_pool", host_facts, request_fields) == expected


@pytest.mark.parametrize(("host_facts", "request_fields", "expected"), [
    ({"cpus": 12.0}, {}, None),
    ({"cpus": 32.0}, {"min_cpus": 32}, None),
    ({"cpus": 12.0}, {"min_cpus": 32}, "has fewer than 32.0 CPUs"),
    ({"memory": 64 * GiB}, {"min_memory": 64 * GiB}, None),
    ({"memory": 16 * GiB}, {"min_memory": 64 * GiB}, "has less than 64 GiB memory"),
    # Minimums are about installed hardware: a fully allocated big host still qualifies here.
    ({"cpus": 32.0, "allocated_cpus": 32.0}, {"min_cpus": 32}, None),
])
def test_hardware(host_facts, request_fields, expected):
    assert reason("hardware", host_facts, request_fields) == expected


@pytest.mark.parametrize(("labels", "constraints", "expected"), [
    ({}, [], None),
    ({"disk": "ssd"}, ["disk==ssd"], None),
    ({"disk": "hdd"}, ["disk==ssd"], "label disk==ssd not met"),
    ({"disk": "ssd", "gpu": "t4"}, ["disk==ssd", "gpu in (a100,h100)"], "label gpu in (a100,h100) not met"),
    ({"disk": "hdd", "gpu": "t4"}, ["disk==ssd", "gpu in (a100,h100)"], "label disk==ssd not met"),  # first unmet
    ({"zone": "b"}, ["zone!=b"], "label zone!=b not met"),
    ({}, ["disk"], "label disk not met"),
    ({"gpu": "a100"}, ["!gpu"], "label !gpu not met"),
])
def test_labels(labels, constraints, expected):
    assert reason("labels", {"labels": labels}, {"constraints": constraints}) == expected


@pytest.mark.parametrize(("host_facts", "request_fields", "expected"), [
    ({"cpus": 4.0, "allocated_cpus": 2.0}, {"cpus": 2.0}, None),  # exactly full is a fit
    ({"cpus": 4.0, "allocated_cpus": 2.5}, {"cpus": 2.0}, "lack 2.0 CPUs"),
    ({"cpus": 4.0}, {"cpus": 0.25}, None),
    ({"cpus": 4.0, "allocated_cpus": 3.9}, {"cpus": 0.25}, "lack 0.25 CPUs"),
    ({"memory": 2 * GiB, "allocated_memory": GiB}, {"memory": GiB}, None),
    ({"memory": 2 * GiB, "allocated_memory": GiB + 1}, {"memory": 512 * MiB + GiB // 2}, "lack 1 GiB memory"),
    ({"memory": 2 * GiB, "allocated_memory": 1800 * MiB}, {"memory": 512 * MiB}, "lack 512 MiB memory"),
    # CPU is reported first when both are short.
    ({"cpus": 1.0, "memory": GiB}, {"cpus": 2.0, "memory": 2 * GiB}, "lack 2.0 CPUs"),
    # An overcommitted host from the inventory fits nothing, however small.
    ({"cpus": 4.0, "allocated_cpus": 5.0}, {"cpus": 0.0, "memory": 0}, "lack 0.0 CPUs"),
])
def test_resource_fit(host_facts, request_fields, expected):
    assert reason("resource_fit", host_facts, request_fields) == expected


@pytest.mark.parametrize(("used", "wanted", "expected"), [
    (set(), set(), None),
    ({9100}, set(), None),
    ({9100}, {8080}, None),
    ({8080, 9100}, {8080}, "port 8080 in use"),
    ({443, 80}, {80, 443, 8080}, "port 80 in use"),  # the lowest clashing port is named
])
def test_ports(used, wanted, expected):
    assert reason("ports", {"used_ports": frozenset(used)}, {"ports": frozenset(wanted)}) == expected


@pytest.mark.parametrize(("counts", "idc_counts", "request_fields", "expected"), [
    ({}, {}, {"max_per_host": 1}, None),
    ({"api": 1}, {}, {}, None),
    ({"api": 1}, {}, {"max_per_host": 2}, None),
    ({"api": 2}, {}, {"max_per_host": 2}, "already 2 of service api on host"),
    ({"web": 5}, {}, {"max_per_host": 1}, None),  # other services do not count
    ({}, {"bj": 2}, {"max_per_idc": 3}, None),
    ({}, {"bj": 3}, {"max_per_idc": 3}, "already 3 of service api in idc bj"),
    ({}, {"sh": 9}, {"max_per_idc": 3}, None),  # the host is in bj
    ({"api": 1}, {"bj": 3}, {"max_per_host": 1, "max_per_idc": 3}, "already 1 of service api on host"),
])
def test_spread(counts, idc_counts, request_fields, expected):
    context = PlacementContext(idc_counts)
    assert reason("spread", {"service_counts": counts}, request_fields, context) == expected


def test_default_order_puts_static_filters_first():
    statics = [FILTERS[name].static for name in DEFAULT_FILTERS]
    assert statics == sorted(statics, reverse=True)
    assert set(DEFAULT_FILTERS) == set(FILTERS)
    assert DEFAULT_FILTERS[:2] == ("liveness", "admin_state")


@pytest.mark.parametrize(("host_facts", "request_fields", "expected"), [
    ({"alive": False, "admin_state": "paused", "cluster": "batch"}, {"cluster": "web"}, "down"),
    ({"admin_state": "draining", "cluster": "batch"}, {"cluster": "web"}, "draining"),
    ({"cluster": "batch", "cpus": 1.0}, {"cluster": "web", "cpus": 2.0}, "not in cluster web"),
    ({"labels": {"disk": "hdd"}, "cpus": 1.0}, {"constraints": ["disk==ssd"], "cpus": 2.0},
     "label disk==ssd not met"),
    ({"cpus": 1.0, "used_ports": frozenset({80})}, {"cpus": 2.0, "ports": frozenset({80})}, "lack 2.0 CPUs"),
    ({}, {}, None),
])
def test_the_first_failing_filter_names_the_reason(host_facts, request_fields, expected):
    rejection = PROFILES["spread"].first_rejection(working(**host_facts), request(**request_fields), NO_CONTEXT)
    assert (rejection.reason if rejection else None) == expected
