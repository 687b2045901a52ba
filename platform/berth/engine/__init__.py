"""The boundary to Docker engines: a small interface, plain data in and out.

`DockerEngine` (berth.engine.sdk) talks to a real engine over a unix socket or TCP+TLS;
`FakeEngine` (berth.engine.fake) keeps containers in memory for unit tests of pure logic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from scheduler.orchestration.containers import (  # noqa: F401  (re-exported)
    LABEL_APPLICATION, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_PORT, LABEL_REVISION, LABEL_SERVICE,
    LABEL_SLOT, ContainerSpec,
)


class EngineError(Exception):
    """The engine could not be reached or refused the request; the message says which."""


class NameInUse(EngineError):
    """A container of that name already exists on the engine (whose it is, its labels say)."""


@dataclass(frozen=True)
class TlsMaterial:
    ca: str = field(repr=False)
    cert: str = field(repr=False)
    key: str = field(repr=False)


@dataclass(frozen=True)
class Endpoint:
    url: str  # unix:///var/run/docker.sock or tcp://10.0.0.5:2376
    tls: TlsMaterial | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class EngineInfo:
    cpus: int
    memory: int
    kernel: str
    engine_version: str
    os: str
    images: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    image: str
    labels: dict[str, str]
    status: str  # created, running, exited, ...
    health: str | None = None  # starting, healthy, unhealthy, or None without a healthcheck
    exit_code: int | None = None


@dataclass(frozen=True)
class CpuSample:
    """One stats reading; CPU% needs two of them (see berth.engine.cpu_percent)."""

    container_cpu_ns: int
    system_cpu_ns: int
    online_cpus: int


class Engine(Protocol):
    def ping(self) -> bool: ...
    def info(self) -> EngineInfo: ...
    def list_containers(self, labels: dict[str, str] | None = None,
                        all: bool = True) -> list[ContainerState]: ...
    def inspect(self, name_or_id: str) -> ContainerState | None: ...
    def create(self, spec: ContainerSpec) -> ContainerState: ...
    def start(self, name_or_id: str) -> None: ...
    def stop(self, name_or_id: str, timeout_s: int = 10) -> None: ...
    def remove(self, name_or_id: str, force: bool = True) -> None: ...
    def pull(self, image: str, username: str | None = None,
             password: str | None = None) -> None: ...
    # Give a pulled image another name (a mirror's copy the primary's name).
    def tag(self, image: str, target: str) -> None: ...
    def cpu_sample(self, name_or_id: str) -> CpuSample | None: ...
    def cpu_percent(self, name_or_id: str) -> float | None: ...
    # stdout and stderr lines timestamped in (since, until], Unix seconds (since None: from
    # the container's start), newline stripped; None when there is no such container.
    def logs_since(self, name_or_id: str, since: float | None,
                   until: float) -> list[str] | None: ...
    # Memory in use as `docker stats` shows it (page cache not counted); None if not running.
    def memory_usage(self, name_or_id: str) -> int | None: ...
    def close(self) -> None: ...


def cpu_percent(previous: CpuSample, current: CpuSample) -> float | None:
    """CPU% the way `docker stats` shows it: 100% is one core."""
    system_delta = current.system_cpu_ns - previous.system_cpu_ns
    cpu_delta = current.container_cpu_ns - previous.container_cpu_ns
    if system_delta <= 0 or cpu_delta < 0:
        return None
    return cpu_delta / system_delta * current.online_cpus * 100.0
