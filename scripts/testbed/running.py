"""What callers do with a running bed: look at it, take an engine down and bring it back,
restart a registry, add a database, pull an image, get a docker client. Mixed into TestBed,
which owns the components and their lifecycle."""
from __future__ import annotations

import copy
import http.client
import json
import signal
import time
from typing import Callable

from . import databases
from .common import TestBedError
from .engines import DockerAPI, Engine, remove_containers_of, spawn_engine, stop_engines, \
    sweep_engine, wait_engine
from .ports import tcp_open
from .processes import terminate
from .registries import registry_answers, spawn_registry, wait_registry


class RunningBed:
    """The operations of TestBed on components that are up (see TestBed for the attributes)."""

    def engine(self, name: str) -> dict:
        return self._engine(name).to_state()

    def status(self) -> dict[str, bool]:
        """Whether each component answers right now."""
        def answers(check: Callable[[], bool]) -> bool:
            try:
                return check()
            except (OSError, http.client.HTTPException, TestBedError):
                return False

        status = {f"engine {e.name}": answers(DockerAPI(e, 5).ping) for e in self.engines.values()}
        for r in self.registries.values():
            status[f"registry {r.name}"] = answers(lambda r=r: registry_answers(r))
        if self.postgres:
            status["postgres"] = tcp_open(self.postgres.port)
        if self.redis:
            status["redis"] = answers(lambda: databases.redis_pong(self.redis.port))
        return status


    def stop_engine(self, name: str, *, kill: bool = False) -> None:
        """Take one engine down, as if its host went down; start_engine() brings it back.

        By default dockerd gets SIGTERM and stops its containers first, each within its own
        stop timeout (10 s unless the container was created with another: a busybox `sh` or
        `sleep` as PID 1 ignores SIGTERM, so it takes the full 10 s). With kill=True it is a
        crash instead: SIGKILL for dockerd, its containerd, the shims and the containers, at
        once. Either way the containers stay in its data root, as exited, for the restart."""
        engine = self._engine(name)
        if kill:
            if engine.proc is not None:
                engine.proc.send(signal.SIGKILL)
                engine.proc.wait(self.timeout)
            sweep_engine(engine, expected=True)
        else:
            stop_engines([engine], remove_containers=False, timeout=self.timeout)
        self.write_state()

    def start_engine(self, name: str) -> dict:
        """Start a stopped engine again, on the same port, socket and directories."""
        engine = self._engine(name)
        if engine.proc is not None and engine.proc.alive:
            raise TestBedError(f"engine {name} is already running (pid {engine.proc.pid})")
        self._find_programs()
        spawn_engine(engine, self._programs["dockerd"], self.engine_args)
        self.write_state()
        wait_engine(engine, time.monotonic() + self.timeout)
        return engine.to_state()

    def remove_containers(self, label: str | None = None) -> int:
        """Remove the containers (with `label`, "key" or "key=value", if given) of every running
        engine; how many there were."""
        return sum(remove_containers_of(e, label) for e in self.engines.values()
                   if e.proc is not None and e.proc.alive)

    def restart_registry(self, name: str, extra_config: dict | None = None) -> dict:
        """Restart a registry on the same port and storage; with `extra_config`, that dict
        replaces the one merged into its generated config (e.g. to add `auth.token`)."""
        registry = self.registries[name]
        if extra_config is not None:
            registry.extra_config = copy.deepcopy(extra_config)
        terminate([(f"registry {name}", registry.proc, signal.SIGTERM)], self.timeout)
        self._find_programs()
        spawn_registry(registry, self._programs["registry"])
        self.write_state()
        wait_registry(registry, time.monotonic() + self.timeout)
        return registry.to_state()

    def stop_registry(self, name: str) -> None:
        """Stop a registry (its storage kept), as when a mirror's IDC goes dark."""
        registry = self.registries[name]
        terminate([(f"registry {name}", registry.proc, signal.SIGKILL)], self.timeout)
        registry.proc = None
        self.write_state()

    def start_registry(self, name: str) -> dict:
        """Start a stopped registry again on its port and storage."""
        return self.restart_registry(name)

    def create_database(self, name: str) -> str:
        """A new, empty PostgreSQL database `name` on the bed's server; its URL."""
        if self.postgres is None:
            raise TestBedError("this test bed runs no PostgreSQL")
        return databases.create_database(self.postgres, name, self.timeout)

    def load_image(self, engine_name: str, ref: str | None = None, auth: dict | None = None) -> str:
        """Pull `ref` (default: the test image) from its registry into an engine.

        Only the first engine has the test image after start(); the others pull it like this.
        127.0.0.0/8 registries are insecure (plain HTTP) by default in dockerd, so no flag needed."""
        ref = ref or self.image
        if ref is None:
            raise TestBedError("no image given and the test bed built none")
        DockerAPI(self._engine(engine_name), self.timeout).pull(ref, auth)
        return ref

    def docker_client(self, engine_name: str):
        """A docker SDK client for an engine (imports `docker`, so needs the virtualenv)."""
        import docker  # noqa: PLC0415 - optional dependency, the rest is stdlib only

        engine = self._engine(engine_name)
        tls = None
        if engine.tls is not None:
            tls = docker.tls.TLSConfig(client_cert=(engine.tls.cert, engine.tls.key),
                                       ca_cert=engine.tls.ca, verify=True)
        # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override the engine's CA (and
        # *_proxy variables route traffic elsewhere), so the client must ignore the environment.
        # The SDK asks for the API version as it is constructed, before that can be switched
        # off: ask for it ourselves.
        version = json.loads(DockerAPI(engine, 10).call("GET", "/version"))["ApiVersion"]
        client = docker.DockerClient(base_url=engine.url, tls=tls, version=version,
                                     timeout=int(self.timeout))
        client.api.trust_env = False
        return client

    def _engine(self, name: str) -> Engine:
        try:
            return self.engines[name]
        except KeyError:
            raise TestBedError(f"no engine {name!r}; engines: {', '.join(self.engines)}") from None
