"""Small constructors for placement tests: hosts, requests and working host state with defaults."""
from __future__ import annotations

from scheduler.placement import HostSnapshot, PlacementRequest
from scheduler.placement.framework import PlacementContext
from scheduler.placement.state import HostState

GiB = 1 << 30
MiB = 1 << 20
NO_CONTEXT = PlacementContext({})


def host(number: int, **facts) -> HostSnapshot:
    """Host `number` named h<number>: 16 CPUs, 32 GiB, cluster web, pool blue, IDC bj, alive, active."""
    defaults = dict(id=number, name=f"h{number:02d}", cluster="web", pool="blue", idc="bj",
                    cpus=16.0, memory=32 * GiB)
    return HostSnapshot(**{**defaults, **facts})


def working(**facts) -> HostState:
    return HostState(0, host(1, **facts))


def request(**fields) -> PlacementRequest:
    """One container of service api: 1 CPU, 1 GiB, spread."""
    return PlacementRequest(**{"service": "api", "cpus": 1.0, "memory": GiB, **fields})
