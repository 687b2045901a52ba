"""Working state: mutable copies of the host snapshots that absorb each placement as it is made."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from scheduler.placement.framework import PlacementContext
from scheduler.placement.model import HostSnapshot, PlacementRequest
from scheduler.placement.units import MILLI, to_millicpus


class HostState:
    """One host's facts plus its allocations so far. CPUs are whole millicpus to keep sums exact."""

    __slots__ = (
        "index", "snapshot", "id", "name", "cluster", "pool", "idc", "labels", "alive", "admin_state",
        "millicpus", "memory", "allocated_millicpus", "allocated_memory", "ports", "images", "service_counts",
    )

    def __init__(self, index: int, snapshot: HostSnapshot) -> None:
        self.index = index
        self.snapshot = snapshot
        self.id = snapshot.id
        self.name = snapshot.name
        self.cluster = snapshot.cluster
        self.pool = snapshot.pool
        self.idc = snapshot.idc
        self.labels = dict(snapshot.labels)
        self.alive = snapshot.alive
        self.admin_state = snapshot.admin_state
        self.millicpus = to_millicpus(snapshot.cpus)
        self.memory = snapshot.memory
        self.allocated_millicpus = to_millicpus(snapshot.allocated_cpus)
        self.allocated_memory = snapshot.allocated_memory
        self.ports = set(snapshot.used_ports)
        self.images = set(snapshot.images)
        self.service_counts = dict(snapshot.service_counts)

    @property
    def schedulable(self) -> bool:
        return self.alive and self.admin_state == "active"

    @property
    def load(self) -> int:
        """CPU fraction + memory fraction scaled by millicpus*memory: exact, and it orders hosts of one shape."""
        return self.allocated_millicpus * self.memory + self.allocated_memory * self.millicpus

    def fixed_facts(self) -> tuple:
        """Everything a static filter may read; hosts with equal facts get equal static verdicts."""
        return (self.cluster, self.pool, self.idc, tuple(sorted(self.labels.items())),
                self.alive, self.admin_state, self.millicpus, self.memory)

    def as_snapshot(self) -> HostSnapshot:
        return replace(
            self.snapshot,
            allocated_cpus=self.allocated_millicpus / MILLI,
            allocated_memory=self.allocated_memory,
            used_ports=frozenset(self.ports),
            images=frozenset(self.images),
            service_counts=dict(self.service_counts),
        )


class ClusterState:
    """All hosts in tie-break order (name, then id) and the per-IDC replica counts of each service."""

    def __init__(self, snapshots: Iterable[HostSnapshot]) -> None:
        ordered = sorted(snapshots, key=lambda snap: (snap.name, str(snap.id)))
        self.hosts = [HostState(index, snap) for index, snap in enumerate(ordered)]
        self.by_id: dict = {}
        for host in self.hosts:
            if host.id in self.by_id:
                raise ValueError(f"duplicate host id {host.id!r}")
            self.by_id[host.id] = host
        self.idc_counts: dict[str, dict[str, int]] = {}
        for host in self.hosts:
            for service, count in host.service_counts.items():
                per_idc = self.idc_counts.setdefault(service, {})
                per_idc[host.idc] = per_idc.get(host.idc, 0) + count

    def context(self, request: PlacementRequest) -> PlacementContext:
        return PlacementContext(self.idc_counts.get(request.service, {}))

    def commit(self, host: HostState, request: PlacementRequest) -> None:
        """Account for one container of `request` now running on `host`."""
        host.allocated_millicpus += request.millicpus
        host.allocated_memory += request.memory
        host.ports.update(request.ports)
        # The image is not counted as present: it is only being pulled, and counting it would
        # pull every later replica of the service onto the same host (locality beating spread).
        host.service_counts[request.service] = host.service_counts.get(request.service, 0) + 1
        per_idc = self.idc_counts.setdefault(request.service, {})
        per_idc[host.idc] = per_idc.get(host.idc, 0) + 1
