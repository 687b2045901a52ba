"""TestBed: start, describe, adopt and stop the bed's components as one unit."""
from __future__ import annotations

import atexit
import copy
import json
import os
import signal
import time
from pathlib import Path
from typing import Iterable

from . import databases
from .common import DEFAULT_TIMEOUT, LOCALHOST, log, write_json_atomically
from .databases import POSTGRES_DB, Service
from .engines import Engine, EngineTLS, spawn_engine, stop_engines, wait_engine
from .image import build_test_image
from .ports import claim_port_ranges, free_port, release_port_ranges
from .processes import kill_strays, terminate
from .programs import find_programs
from .monitoring import Monitoring
from .registries import Registry, spawn_registry, wait_registry
from .root import make_root, remove_root, remove_state_file, unmount_all
from .running import RunningBed

# Two mirrors, so mirrors can be tested in two IDCs.
DEFAULT_REGISTRIES = ("primary", "mirror", "mirror-b")


class TestBed(RunningBed):
    """Start, describe and stop the test bed. See the package docstring.

    Arguments:
        root:            base directory; created, must be empty if it exists (default: mkdtemp).
        engines:         number of dockerd engines (named e1..eN), or a list of names.
        registries:      names of the registries to run; the image is pushed to "primary".
        postgres, redis: whether to run them.
        image:           build the busybox test image on the first engine and push it to
                         "primary"; None (default): if there are both.
        registry_config: {registry name: dict merged into its generated config}; None values delete.
        engine_tls:      {engine name: EngineTLS} for engines that should require mutual TLS.
        engine_args:     extra dockerd arguments for every engine.
        image_push_auth: X-Registry-Auth credentials for the push, if the primary has auth at start.
        state_path:      where start() writes the state JSON (and stop() removes it).
        keep:            leave the root directory (logs, data) in place after stop().
        timeout:         deadline in seconds for each wait (startup, shutdown).
        port_range_size: host ports reserved per engine for the services it runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, root: str | os.PathLike | None = None, *,
                 engines: int | Iterable[str] = 3,
                 registries: Iterable[str] = DEFAULT_REGISTRIES,
                 postgres: bool = True,
                 redis: bool = True,
                 image: bool | None = None,
                 registry_config: dict[str, dict] | None = None,
                 engine_tls: dict[str, EngineTLS] | None = None,
                 engine_args: Iterable[str] = (),
                 image_push_auth: dict | None = None,
                 state_path: str | os.PathLike | None = None,
                 keep: bool = False,
                 timeout: float = DEFAULT_TIMEOUT,
                 port_range_size: int = 1000):
        engine_names = [f"e{i}" for i in range(1, engines + 1)] if isinstance(engines, int) \
            else list(engines)
        registries = list(registries)
        can_build = bool(engine_names) and "primary" in registries
        if image is None:
            image = can_build
        elif image and not can_build:
            raise ValueError("the test image needs at least one engine and the 'primary' registry")
        unknown = set(registry_config or {}) - set(registries)
        if unknown:
            raise ValueError(f"registry_config for registries that are not started: {sorted(unknown)}")

        self.root = Path(os.path.realpath(root)) if root else None
        self.keep = keep
        self.timeout = timeout
        self.state_path = Path(state_path) if state_path else None
        self.engine_args = list(engine_args)
        self.image_push_auth = image_push_auth
        self.port_range_size = port_range_size
        self._wanted = dict(engines=engine_names, registries=registries, postgres=postgres,
                            redis=redis, image=image, registry_config=registry_config or {},
                            engine_tls=engine_tls or {})

        self.engines: dict[str, Engine] = {}
        self.registries: dict[str, Registry] = {}
        self.postgres: Service | None = None
        self.redis: Service | None = None
        self.image: str | None = None
        self.ready = False
        self._started = self._stopped = self._detached = False
        self.monitorings: list[Monitoring] = []  # started by tests through monitoring()
        self._owns_root = False  # set once the root is ours to sweep and delete
        self._initdb: Service | None = None  # runs while the rest boots
        self._programs: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> "TestBed":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> dict:
        """Start every component, wait until all answer, return (and write) the state."""
        if self._started:
            raise RuntimeError("a TestBed starts once; make a new one")
        self._started = True
        atexit.register(self._stop_at_exit)
        began = time.monotonic()
        try:
            self._find_programs()
            self.root = make_root(self.root)
            self._owns_root = True
            self._plan()
            self._spawn_all()
            self.write_state()
            deadline = time.monotonic() + self.timeout
            if self._wanted["image"]:
                # The build needs only the first engine and the primary registry; initdb, the
                # slowest step, goes on meanwhile.
                first, primary = next(iter(self.engines.values())), self.registries["primary"]
                wait_engine(first, deadline)
                wait_registry(primary, deadline)
                self.image = build_test_image(first, primary, self._programs["busybox"],
                                              time.monotonic() + self.timeout, self.image_push_auth)
            self._wait_all(deadline)
            self.ready = True
            self.write_state()
        except BaseException:
            log.error("test bed failed to start; stopping what was started")
            self.stop()
            raise
        log.info("test bed up in %.1fs (root %s)", time.monotonic() - began, self.root)
        return self.state

    def monitoring(self, name: str) -> Monitoring:
        """Prometheus and Alertmanager for one Berth, under R/mon-NAME/ on free ports: write
        their configuration there (`berth monitoring config --out`), then start() them. The
        bed stops them with everything else if their user does not."""
        found = Monitoring(self.root / f"mon-{name}")
        found.dir.mkdir(parents=True, exist_ok=True)
        self.monitorings.append(found)
        return found

    def stop(self) -> None:
        """Stop everything and delete the root (unless keep). Safe to call more than once."""
        if self._stopped or not self._started:
            return
        for found in self.monitorings:
            found.stop()
        self._stopped = True
        atexit.unregister(self._stop_at_exit)
        began = time.monotonic()
        stop_engines(list(self.engines.values()), remove_containers=True, timeout=self.timeout)
        if self._initdb is not None:
            # Interrupted while it ran: kill it along with its `postgres --single` child.
            self._initdb.proc.send(signal.SIGKILL, group=True)
            self._initdb.proc.wait(self.timeout)
        terminate([(f"registry {r.name}", r.proc, signal.SIGTERM) for r in self.registries.values()]
                  + [("redis", self.redis and self.redis.proc, signal.SIGTERM),
                     # SIGINT is PostgreSQL's "fast" shutdown, what `pg_ctl stop -m fast` sends;
                     # pg_ctl itself refuses to run as root.
                     ("postgres", self.postgres and self.postgres.proc, signal.SIGINT)],
                  self.timeout)
        if self._owns_root:
            kill_strays(str(self.root))
            unmount_all(self.root)
            release_port_ranges([e.port_range for e in self.engines.values()], str(self.root))
            remove_root(self.root, self.keep)
        remove_state_file(self.state_path, self.root)
        log.info("test bed down in %.1fs", time.monotonic() - began)

    def detach(self) -> None:
        """Leave the processes running when this Python process exits (`up --detach`)."""
        self._detached = True
        atexit.unregister(self._stop_at_exit)

    @classmethod
    def from_state(cls, state: dict | str | os.PathLike) -> "TestBed":
        """A TestBed for processes started elsewhere (e.g. by `up --detach`): to stop or inspect."""
        state_path = None
        if not isinstance(state, dict):
            state_path = Path(state)
            state = json.loads(state_path.read_text())
        bed = cls(state["root"], engines=[], registries=[], postgres=False, redis=False,
                  image=False, state_path=state_path, keep=state.get("keep", False))
        bed.engines = {e["name"]: Engine.from_state(e) for e in state["engines"]}
        bed.registries = {name: Registry.from_state(r) for name, r in state["registries"].items()}
        bed.postgres = Service.from_state("postgres", state.get("postgres"))
        bed.redis = Service.from_state("redis", state.get("redis"))
        bed.image = state.get("image")
        bed.ready = state.get("ready", False)
        bed._owns_root = True
        bed._started = True  # adopted: nothing is stopped at exit unless stop() is called
        atexit.unregister(bed._stop_at_exit)
        return bed

    # -- what it is -------------------------------------------------------------------------

    @property
    def state(self) -> dict:
        postgres = redis = None
        if self.postgres:
            postgres = self.postgres.to_state() | {
                "url": self.postgres_url, "host": LOCALHOST, "database": POSTGRES_DB,
                "user": "postgres", "socket_dir": str(self.postgres.dir / "sock"),
                "data_dir": str(self.postgres.dir / "data")}
        if self.redis:
            redis = self.redis.to_state() | {"url": self.redis_url}
        procs = [c.proc for c in [*self.engines.values(), *self.registries.values(),
                                  self.postgres, self.redis] if c is not None and c.proc]
        return {
            "root": str(self.root),
            "ready": self.ready,
            "keep": self.keep,
            "engines": [e.to_state() for e in self.engines.values()],
            "registries": {name: r.to_state() for name, r in self.registries.items()},
            "postgres": postgres,
            "postgres_url": self.postgres_url,
            "redis": redis,
            "redis_url": self.redis_url,
            "image": self.image,
            "pids": [p.pid for p in procs],
        }

    @property
    def postgres_url(self) -> str | None:
        return databases.postgres_url(self.postgres) if self.postgres else None

    @property
    def redis_url(self) -> str | None:
        return f"redis://{LOCALHOST}:{self.redis.port}/0" if self.redis else None

    def write_state(self, path: str | os.PathLike | None = None) -> None:
        target = Path(path) if path else self.state_path
        if target is not None:
            write_json_atomically(target, self.state)

    # -- starting ---------------------------------------------------------------------------

    def _find_programs(self) -> None:
        if not self._programs:
            wanted = self._wanted
            self._programs = find_programs(
                engines=bool(self.engines or wanted["engines"]),
                registries=bool(self.registries or wanted["registries"]),
                redis=bool(self.redis or wanted["redis"]),
                postgres=bool(self.postgres or wanted["postgres"]), image=wanted["image"])

    def _plan(self) -> None:
        """Pick ports and directories for every component."""
        wanted, root = self._wanted, str(self.root)
        ranges = claim_port_ranges(len(wanted["engines"]), self.port_range_size, root)
        for name, port_range in zip(wanted["engines"], ranges):
            self.engines[name] = Engine(name=name, dir=self.root / name, port=free_port(),
                                        port_range=port_range, tls=wanted["engine_tls"].get(name))
        for name in wanted["registries"]:
            extra_config = copy.deepcopy(wanted["registry_config"].get(name, {}))
            self.registries[name] = Registry(name=name, dir=self.root / f"reg-{name}",
                                             port=free_port(), extra_config=extra_config)
        if wanted["postgres"]:
            self.postgres = Service("postgres", self.root / "pg", free_port())
        if wanted["redis"]:
            self.redis = Service("redis", self.root / "redis", free_port())

    def _spawn_all(self) -> None:
        """Start every process without waiting for any: they all boot in parallel."""
        for engine in self.engines.values():
            spawn_engine(engine, self._programs["dockerd"], self.engine_args)
        for registry in self.registries.values():
            spawn_registry(registry, self._programs["registry"])
        if self.redis:
            databases.spawn_redis(self.redis, self._programs["redis"])
        if self.postgres:
            # PostgreSQL itself starts once initdb is done (_wait_all).
            self._initdb = databases.spawn_initdb(self.postgres, self._programs)

    def _wait_all(self, deadline: float) -> None:
        for engine in self.engines.values():
            wait_engine(engine, deadline)
        for registry in self.registries.values():
            wait_registry(registry, deadline)
        if self.redis:
            databases.wait_redis(self.redis, deadline)
        if self.postgres:
            databases.finish_initdb(self._initdb, deadline, self.timeout)
            databases.spawn_postgres(self.postgres, self._programs)
            self.write_state()
            databases.wait_postgres(self.postgres, self._programs, deadline, self.timeout)

    def _stop_at_exit(self) -> None:
        if not self._detached:
            self.stop()
