"""The plain data a reconcile plan is made from and made of: what the database wants and
recorded (AppState), what the engines showed this round (SeenContainer), the hosts
(HostFacts); and what the plan says to do (actions) and to write (RowWrite, ServiceWrite).
Times are Unix seconds, so the planner needs no clock. The per-container records are named
tuples: a round at fleet size makes tens of thousands of them, and a tuple is made several
times faster than a frozen dataclass."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import NamedTuple

from scheduler.orchestration.containers import ContainerSpec
from scheduler.orchestration.rollout import Progress, Release, Step

READY_HEALTH = ("healthy", None)  # running and healthy, or running without a healthcheck


@dataclass(frozen=True)
class HostFacts:
    id: int
    name: str
    address: str  # where its containers' ports answer
    alive: bool  # up, heartbeat fresh, not in maintenance, and listed this round
    draining: bool = False
    port_range: tuple[int, int] = (20000, 29999)
    maintenance: bool = False  # taken out on purpose: not counted as a sick host
    pool: str | None = None
    idc: str | None = None


class RevisionSpec(NamedTuple):
    """What a revision fixes of a service: its container's make-up."""

    image: str
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = {}
    cpus: float = 0.1
    memory: int = 64 * 2**20
    healthcheck: Mapping | None = None


@dataclass(frozen=True)
class ActiveRelease:
    """A release under way: its row id, its fixed facts, and the progress stored last."""

    id: int
    release: Release
    progress: Progress | None  # None: not started yet (the first round starts it)


@dataclass(frozen=True)
class ServiceState:
    name: str
    image: str
    revision: int = 1
    replicas: int = 1
    cpus: float = 0.1
    memory: int = 64 * 2**20
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    healthcheck: Mapping | None = None
    wants_port: bool = False
    capabilities: tuple[str, ...] = ()  # added back after dropping all
    pids_limit: int = 512
    read_only: bool = False
    constraints: tuple[str, ...] = ()
    strategy: str = "spread"
    depends_on: tuple[tuple[str, str], ...] = ()  # (service, "started" | "healthy")
    status: str = "pending"
    status_detail: str | None = None
    waiting_since: float | None = None
    endpoints: tuple[str, ...] = ()
    # Placement: where its containers may go besides the label constraints.
    cluster: str | None = None
    pool: str | None = None
    idc: str | None = None
    min_cpus: float | None = None
    min_memory: int | None = None
    # The specs of other revisions a release runs, and the release itself.
    revisions: Mapping[int, RevisionSpec] = field(default_factory=dict)
    release: ActiveRelease | None = None

    def at(self, revision: int) -> ServiceState:
        """This service as revision `revision` makes its containers."""
        if revision == self.revision:
            return self
        spec = self.revisions[revision]
        return replace(self, revision=revision, image=spec.image, command=spec.command,
                       environment=spec.environment, cpus=spec.cpus, memory=spec.memory,
                       healthcheck=spec.healthcheck)


class InstanceState(NamedTuple):
    """A container_instances row: one slot of one revision, as last recorded."""

    service: str
    slot: int
    revision: int
    name: str
    host_id: int | None = None
    container_id: str | None = None
    host_port: int | None = None
    state: str = "running"  # running, created, exited, ..., missing, lost, removed
    health: str | None = None
    restarts: int = 0  # crash restarts in a row
    backoff_until: float | None = None
    # A canary analysis' figures (berth.workloads.signals and metrics).
    log_lines: int = 0
    error_lines: int = 0
    cpu_percent: float | None = None
    memory_bytes: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.service, self.slot, self.revision)


@dataclass(frozen=True)
class AppState:
    id: int
    name: str
    services: tuple[ServiceState, ...]
    instances: tuple[InstanceState, ...] = ()
    deleting: bool = False
    deploy_started_at: float | None = None


class SeenContainer(NamedTuple):
    """One of this installation's containers as an engine listed it, read from its labels."""

    host_id: int
    id: str
    name: str
    application: str
    service: str
    slot: int
    revision: int
    status: str  # docker's: created, running, restarting, paused, exited, removing, dead
    health: str | None = None
    port: int | None = None
    exit_code: int | None = None  # once exited: why a release's new container failed

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.service, self.slot, self.revision)


@dataclass(frozen=True)
class Round:
    """What every plan of one round shares."""

    now: float
    installation: str
    hosts: Mapping[int, HostFacts]
    dependency_timeout_s: float = 300.0
    # Set, with the reason, when most of the fleet looks down at once: then the control plane
    # (probes, network, Berth itself) is the likelier fault, and nothing is evicted.
    evictions_paused: str | None = None

    @cached_property
    def down(self) -> frozenset[int]:
        return frozenset(h for h, facts in self.hosts.items() if not facts.alive)

    @cached_property
    def draining(self) -> frozenset[int]:
        return frozenset(h for h, facts in self.hosts.items() if facts.draining)


# -- what a plan says ---------------------------------------------------------------------


class RowWrite(NamedTuple):
    """The row of (service, slot, revision) as it is to be; `fresh` clears its CPU reading."""

    service: str
    slot: int
    revision: int
    name: str
    host_id: int | None
    container_id: str | None
    host_port: int | None
    state: str
    health: str | None
    restarts: int = 0
    backoff_until: float | None = None
    fresh: bool = False

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.service, self.slot, self.revision)


@dataclass(frozen=True)
class Launch:
    """Pull the image, create and start a new container on `host_id`."""

    service: str
    slot: int
    revision: int
    host_id: int
    spec: ContainerSpec
    row: RowWrite  # written once it runs


@dataclass(frozen=True)
class Boot:
    """Start this slot's container that was created but never started."""

    service: str
    slot: int
    revision: int
    host_id: int
    container_id: str
    name: str
    row: RowWrite


@dataclass(frozen=True)
class Discard:
    """Remove container `container_id` from `host_id`; `row` (if any) is written once it is gone."""

    service: str
    slot: int
    revision: int
    host_id: int
    container_id: str
    name: str
    reason: str
    row: RowWrite | None = None


EngineAction = Launch | Boot | Discard


@dataclass(frozen=True)
class ServiceWrite:
    status: str
    detail: str | None
    waiting_since: float | None
    endpoints: tuple[str, ...]
    # The status only counts containers (healthy, started, pending): the recorder derives it
    # again, with plan.status_of, from the rows as they are once the actions are done.
    derived: bool = False


@dataclass(frozen=True)
class AppPlan:
    """Engine actions in waves (a wave starts once the one before it is done), the rows and
    services to write whatever the actions do, and what the pass tells its caller."""

    app_id: int
    app_name: str
    waves: tuple[tuple[EngineAction, ...], ...] = ()
    rows: tuple[RowWrite, ...] = ()
    services: Mapping[str, ServiceWrite] = field(default_factory=dict)
    events: tuple[tuple[str, str, str], ...] = ()  # (kind, message, service)
    # Teardown: later waves only run when every earlier one succeeded (dependents first),
    # and the application row goes once all of them did.
    strict: bool = False
    delete_when_done: bool = False
    waiting: Mapping[str, str] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)
    converged: bool = True
    # Per service: the revisions' slots it runs now (when not simply its revision in
    # 0..replicas-1), and the step of its release, to record.
    layouts: Mapping[str, Mapping[int, frozenset[int]]] = field(default_factory=dict)
    releases: Mapping[str, tuple[int, Step]] = field(default_factory=dict)

    @property
    def actions(self) -> list[EngineAction]:
        return [action for wave in self.waves for action in wave]
