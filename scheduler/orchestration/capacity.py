"""Where a round's new containers go, and what they are created from: one Placer over the
round's host snapshots (each placement sees the ones before it, across applications), the
host ports in use, and the container spec. Pure."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from scheduler.orchestration.containers import (
    LABEL_PORT, ContainerSpec, container_name, identity_labels, service_key,
)
from scheduler.orchestration.rollout import IDC_LABEL
from scheduler.orchestration.state import HostFacts, ServiceState
from scheduler.placement import HostSnapshot, Placer, PlacementRequest


@dataclass(frozen=True)
class Placed:
    host_id: int
    port: int | None


class Capacity:
    """Host ports in use are the snapshots' (recorded) and `used_ports` (seen this round).
    `snapshots` may be a callable that reads them: a round that places nothing (a steady one)
    then never reads the inventory's allocations at all."""

    def __init__(self, snapshots: Iterable[HostSnapshot] | Callable[[], Iterable[HostSnapshot]],
                 hosts: Mapping[int, HostFacts], used_ports: Mapping[int, Iterable[int]]):
        self.hosts = hosts
        self._snapshots = snapshots
        self._seen_ports = used_ports
        self._placer: Placer | None = None
        self.used_ports: dict[int, set[int]] = {}

    @property
    def placer(self) -> Placer:
        if self._placer is None:
            snapshots = list(self._snapshots() if callable(self._snapshots) else self._snapshots)
            # A host that could not be listed this round is as good as down for placement.
            hosts = self.hosts
            self._placer = Placer([replace(s, alive=s.alive and s.id in hosts and hosts[s.id].alive)
                                   for s in snapshots])
            for s in snapshots:
                self.used_ports[s.id] = set(s.used_ports)
            for host, ports in self._seen_ports.items():
                self.used_ports.setdefault(host, set()).update(ports)
        return self._placer

    def place(self, application: str, service: ServiceState,
              extra_constraints: tuple[str, ...] = ()) -> Placed | str:
        """A host (and a host port, if the service wants one) for one more container, or
        why there is none; `extra_constraints` narrow it (a release's stage)."""
        decision = self.placer.place(request_for(application, service, extra_constraints))
        if not decision.placed:
            return decision.explanation
        port = None
        if service.wants_port:
            host = self.hosts[decision.host_id]
            port = self._free_port(host)
            if port is None:
                low, high = host.port_range
                return f"no free port in {low}-{high} on {host.name}"
        return Placed(decision.host_id, port)

    def _free_port(self, host: HostFacts) -> int | None:
        taken = self.used_ports.setdefault(host.id, set())
        for port in range(host.port_range[0], host.port_range[1] + 1):
            if port not in taken:
                taken.add(port)
                return port
        return None


def request_for(application: str, service: ServiceState,
                extra_constraints: tuple[str, ...] = ()) -> PlacementRequest:
    """The service's placement: resources, cluster, pool, minimum hardware, and its label
    constraints; an IDC is the host label IDC_LABEL (berth.hosts.placement sets it)."""
    constraints = tuple(service.constraints) + extra_constraints
    if service.idc:
        constraints += (f"{IDC_LABEL}=={service.idc}",)
    return PlacementRequest(
        service=service_key(application, service.name), cpus=service.cpus, memory=service.memory,
        cluster=service.cluster, pool=service.pool, min_cpus=service.min_cpus,
        min_memory=service.min_memory, constraints=constraints, image=service.image,
        strategy=service.strategy)


def container_spec(installation: str, application: str, service: ServiceState, slot: int,
                   port: int | None) -> ContainerSpec:
    """The container of `slot`: a host-network container on `port` (passed as $PORT, and
    substituted in the command and healthcheck) when the service wants a port, else none."""
    env = dict(service.environment or {})
    command = list(service.command) if service.command else None
    healthcheck = dict(service.healthcheck) if service.healthcheck else None
    labels = identity_labels(installation, application, service.name, service.revision, slot)
    if port is not None:
        env["PORT"] = labels[LABEL_PORT] = str(port)
        if command:
            command = [arg.replace("$PORT", str(port)) for arg in command]
        if healthcheck:
            healthcheck["test"] = [arg.replace("$PORT", str(port)) for arg in healthcheck["test"]]
    return ContainerSpec(
        name=container_name(application, service.name, service.revision, slot),
        image=service.image, command=command, environment=env, labels=labels,
        cpus=service.cpus, memory=service.memory,
        network_mode="host" if port is not None else "none", healthcheck=healthcheck,
        cap_add=tuple(service.capabilities), pids_limit=service.pids_limit,
        read_only=service.read_only)
