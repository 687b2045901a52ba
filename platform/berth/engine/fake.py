"""An in-memory engine for unit tests of logic that drives engines; no I/O at all."""
from __future__ import annotations

import itertools
import threading
from dataclasses import replace

from berth.engine import ContainerSpec, ContainerState, CpuSample, EngineError, EngineInfo, NameInUse

_IDS = itertools.count(1)


class FakeEngine:
    def __init__(self, cpus: int = 4, memory: int = 8 * 2**30, alive: bool = True,
                 images: set[str] | None = None):
        self.cpus, self.memory, self.alive = cpus, memory, alive
        self.images = set(images or ())
        self.pulls: list[str] = []  # every image reference pulled, in order
        self.unreachable_registries: set[str] = set()  # "host:port" whose pulls fail
        self.containers: dict[str, ContainerState] = {}
        self.calls: list[tuple[str, str]] = []
        self.specs: dict[str, ContainerSpec] = {}  # name -> the spec it was created from
        self.cpu: dict[str, float] = {}  # container name -> CPU% it reports
        self.in_use: dict[str, int] = {}  # container name -> memory in use it reports
        self.logs: dict[str, list[tuple[float, str]]] = {}  # container id -> (unix s, line)
        self._ids = _IDS  # unique across engines, as docker's are
        self._lock = threading.RLock()  # passes call one engine from many threads

    def _check_alive(self, what: str) -> None:
        self.calls.append((what.split()[0], what))
        if not self.alive:
            raise EngineError(f"{what} on fake engine failed: connection refused")

    def _find(self, name_or_id: str) -> ContainerState | None:
        for state in list(self.containers.values()):
            if name_or_id in (state.id, state.name):
                return state
        return None

    def ping(self) -> bool:
        self._check_alive("ping")
        return True

    def info(self) -> EngineInfo:
        self._check_alive("info")
        return EngineInfo(cpus=self.cpus, memory=self.memory, kernel="fake", engine_version="fake",
                          os="fake", images=frozenset(self.images))

    def list_containers(self, labels=None, all=True) -> list[ContainerState]:
        self._check_alive("list")
        wanted = (labels or {}).items()
        return [c for c in self.containers.values()
                if wanted <= c.labels.items() and (all or c.status == "running")]

    def inspect(self, name_or_id: str) -> ContainerState | None:
        self._check_alive(f"inspect {name_or_id}")
        return self._find(name_or_id)

    def create(self, spec: ContainerSpec) -> ContainerState:
        self._check_alive(f"create {spec.name}")
        if spec.image not in self.images:
            raise EngineError(f"image {spec.image} is not on the fake engine")
        with self._lock:
            if self._find(spec.name) is not None:
                raise NameInUse(f"create {spec.name} failed: Conflict, the name is in use")
            state = ContainerState(id=f"fake{next(self._ids):060d}", name=spec.name,
                                   image=spec.image, labels=dict(spec.labels), status="created")
            self.containers[state.id] = state
            self.specs[spec.name] = spec
        return state

    def _set(self, name_or_id: str, **changes) -> None:
        with self._lock:
            state = self._find(name_or_id)
            if state is None:
                raise EngineError(f"no such container: {name_or_id}")
            self.containers[state.id] = replace(state, **changes)

    def start(self, name_or_id: str) -> None:
        self._check_alive(f"start {name_or_id}")
        self._set(name_or_id, status="running")

    def stop(self, name_or_id: str, timeout_s: int = 10) -> None:
        self._check_alive(f"stop {name_or_id}")
        self._set(name_or_id, status="exited", exit_code=0)

    def remove(self, name_or_id: str, force: bool = True) -> None:
        self._check_alive(f"remove {name_or_id}")
        with self._lock:
            state = self._find(name_or_id)
            if state is not None:
                del self.containers[state.id]

    def pull(self, image: str, username=None, password=None) -> None:
        self._check_alive(f"pull {image}")
        if image.split("/")[0] in self.unreachable_registries:
            raise EngineError(f"pull {image} failed: registry unreachable")
        self.images.add(image)
        self.pulls.append(image)

    def tag(self, image: str, target: str) -> None:
        self._check_alive(f"tag {image}")
        if image not in self.images:
            raise EngineError(f"tag {image} failed: no such image")
        self.images.add(target)

    def cpu_sample(self, name_or_id: str) -> CpuSample | None:
        self._check_alive(f"stats {name_or_id}")
        return None

    def cpu_percent(self, name_or_id: str) -> float | None:
        self._check_alive(f"stats {name_or_id}")
        state = self._find(name_or_id)
        return self.cpu.get(state.name) if state and state.status == "running" else None

    def log(self, name_or_id: str, *lines: str, at: float) -> None:
        """Have the container print `lines`, stamped `at` (Unix seconds)."""
        with self._lock:
            state = self._find(name_or_id)
            if state is None:
                raise EngineError(f"no such container: {name_or_id}")
            self.logs.setdefault(state.id, []).extend((at, line) for line in lines)

    def logs_since(self, name_or_id: str, since: float | None, until: float) -> list[str] | None:
        self._check_alive(f"logs {name_or_id}")
        with self._lock:
            state = self._find(name_or_id)
            if state is None:
                return None
            return [line for at, line in self.logs.get(state.id, [])
                    if (since is None or at > since) and at <= until]

    def memory_usage(self, name_or_id: str) -> int | None:
        self._check_alive(f"stats {name_or_id}")
        state = self._find(name_or_id)
        return self.in_use.get(state.name) if state and state.status == "running" else None

    def close(self) -> None:
        pass
