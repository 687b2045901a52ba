"""The engine's plain-data boundary: host snapshots and requests in, decisions out."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from scheduler.placement.constraints import Constraint, parse_constraints
from scheduler.placement.units import to_millicpus

HostId = int | str
ADMIN_STATES = ("active", "paused", "draining", "maintenance")
STRATEGIES = ("spread", "binpack")


@dataclass(frozen=True)
class HostSnapshot:
    """One Docker host as the inventory saw it. Declared facts such as disk type live in labels."""

    id: HostId
    name: str
    cluster: str
    pool: str
    idc: str
    cpus: float
    memory: int
    labels: Mapping[str, str] = field(default_factory=dict)
    alive: bool = True
    admin_state: str = "active"
    allocated_cpus: float = 0.0
    allocated_memory: int = 0
    used_ports: frozenset[int] = frozenset()
    images: frozenset[str] = frozenset()
    service_counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.admin_state not in ADMIN_STATES:
            raise ValueError(f"host {self.name}: admin_state {self.admin_state!r} is not one of {ADMIN_STATES}")
        if self.cpus <= 0 or self.memory <= 0:
            raise ValueError(f"host {self.name}: cpus and memory must be positive")
        if self.allocated_cpus < 0 or self.allocated_memory < 0:
            raise ValueError(f"host {self.name}: allocations cannot be negative")
        object.__setattr__(self, "used_ports", frozenset(self.used_ports))
        object.__setattr__(self, "images", frozenset(self.images))


@dataclass(frozen=True)
class PlacementRequest:
    """One container of a service to place. Constraints may be given as strings (`disk==ssd`)."""

    service: str
    cpus: float
    memory: int
    cluster: str | None = None
    pool: str | None = None
    constraints: tuple[Constraint, ...] = ()
    min_cpus: float | None = None
    min_memory: int | None = None
    ports: frozenset[int] = frozenset()
    max_per_host: int | None = None
    max_per_idc: int | None = None
    image: str | None = None
    strategy: str = "spread"
    # Derived in __post_init__ so that filters never convert units per host.
    millicpus: int = field(init=False, repr=False, compare=False)
    min_millicpus: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {STRATEGIES}")
        if self.cpus < 0 or self.memory < 0:
            raise ValueError("requested cpus and memory cannot be negative")
        for name in ("max_per_host", "max_per_idc"):
            limit = getattr(self, name)
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be at least 1, got {limit}")
        ports = frozenset(self.ports)
        if any(not 0 < port < 65536 for port in ports):
            raise ValueError(f"host ports must be within 1..65535, got {sorted(ports)}")
        object.__setattr__(self, "ports", ports)
        object.__setattr__(self, "constraints", parse_constraints(self.constraints))
        object.__setattr__(self, "millicpus", to_millicpus(self.cpus))
        min_millicpus = None if self.min_cpus is None else to_millicpus(self.min_cpus)
        object.__setattr__(self, "min_millicpus", min_millicpus)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a filter turned a host away: the filter's name and a short human reason."""

    filter: str
    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Decision:
    """Where one container goes, or, when nowhere fits, how many hosts failed for which reason."""

    host_id: HostId | None
    host_name: str | None
    score: float | None
    breakdown: Mapping[str, float]
    explanation: str
    rejections: Counter[Rejection] = field(default_factory=Counter)

    @property
    def placed(self) -> bool:
        return self.host_id is not None
