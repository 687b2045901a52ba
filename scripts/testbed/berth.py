"""Berth's own processes on a test bed, for tests and benchmarks: a prepared instance, its web
(gunicorn), Celery workers and beat, their logs, and the primary registry pointed at it.

The processes are started from the virtualenv that runs this code (gunicorn and celery next to
sys.executable). Only `prepare`, `config`, `guard_registry`, `remove_containers` and `api` need
Berth itself (and requests): they import it when called, so the rest of the bed stays
standard library only.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .common import LOCALHOST, TestBedError
from .ports import free_port, http_status
from .processes import Proc, wait_until

REPOSITORY = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 30.0


class Berth:
    """One Berth installation: an instance folder, an environment every process shares, and the
    processes started so far (name -> Popen; workers are "worker", "worker-2", ...)."""

    def __init__(self, instance: Path, logs: Path, *, admin_password: str,
                 settings: dict[str, str] | None = None, port: int | None = None,
                 venv_bin: Path | None = None):
        self.instance = Path(instance)
        self.logs = Path(logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://{LOCALHOST}:{self.port}"
        self.admin_password = admin_password
        self.bin = venv_bin or Path(sys.executable).parent  # gunicorn, celery
        # No BERTH_ADMIN_PASSWORD here: prepare() creates admin, and no process needs it.
        self.env = dict(os.environ, BERTH_INSTANCE=str(self.instance),
                        PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
                        **(settings or {}))
        self.processes: dict[str, subprocess.Popen] = {}
        self._config = None
        self._config_env: dict[str, str] | None = None
        self._registry_before: dict[str, dict] = {}

    # -- configuration and instance ---------------------------------------------------------

    @property
    def config(self):
        """berth.config.Config of this installation, as its processes see it (from self.env)."""
        if self._config is None or self._config_env != self.env:
            from berth.config import Config  # noqa: PLC0415 - needs the virtualenv

            self._config, self._config_env = Config.from_env(self.env), dict(self.env)
        return self._config

    def prepare(self) -> "Berth":
        """Migrate its database and create `admin` and the public project `library`. This
        process's sessions (berth.db) are left pointing at that database."""
        from berth import accounts, db, migrate, vault  # noqa: PLC0415
        from berth.projects import services as projects  # noqa: PLC0415

        migrate.upgrade(self.config.database_url)
        db.configure(self.config.database_url)
        vault.configure(self.config.secrets_keys)
        with db.unit_of_work():
            admin, _ = accounts.ensure_admin(self.admin_password)
            if projects.find_project("library") is None:
                projects.create_project("library", public=True, actor=admin)
        return self

    def guard_registry(self, bed, name: str = "primary") -> None:
        """Restart the bed's registry `name` with token auth and notifications pointing at this
        Berth, and make it this Berth's registry. Call before its processes start."""
        from berth.projects.registry_config import guard_settings  # noqa: PLC0415

        registry = bed.state["registries"][name]
        self._registry_before.setdefault(name, registry["extra_config"])
        bed.restart_registry(name, guard_settings(self.config, self.url))
        self.env["BERTH_REGISTRY_URL"] = registry["url"]

    def guard_mirror(self, bed, name: str, service: str) -> dict:
        """Restart the bed's registry `name` as one of this Berth's mirrors: token auth with
        the mirror's own `service` (a token for another registry is refused) and no
        notifications (nobody pushes there but the sync). Returns its state entry."""
        from berth.projects.registry_config import guard_settings  # noqa: PLC0415

        registry = bed.state["registries"][name]
        self._registry_before.setdefault(name, registry["extra_config"])
        auth = guard_settings(self.config, self.url)["auth"]
        auth["token"]["service"] = service
        return bed.restart_registry(name, {"auth": auth, "notifications": None})

    def release_registry(self, bed, name: str = "primary") -> None:
        """Give the registry back the configuration it had before guard_registry()."""
        if name in self._registry_before:
            bed.restart_registry(name, self._registry_before.pop(name))

    def remove_containers(self, bed) -> int:
        """Remove, from every running engine of the bed, the containers of this installation."""
        from berth.engine import LABEL_INSTALLATION  # noqa: PLC0415

        return bed.remove_containers(f"{LABEL_INSTALLATION}={self.config.installation_id}")

    # -- processes --------------------------------------------------------------------------

    def start(self, workers: int = 1) -> "Berth":
        """Web, `workers` Celery workers and beat."""
        self.start_web()
        for number in range(1, workers + 1):
            self.start_worker("worker" if number == 1 else f"worker-{number}")
        self.start_beat()
        return self

    def start_web(self, *, workers: int = 2, threads: int = 4, timeout: float = 60.0) -> None:
        """gunicorn as the Procfile runs it; returns once /healthz answers 200."""
        popen = self._spawn("web", [str(self.bin / "gunicorn"), "--config",
                                    "python:web.gunicorn_conf", "--bind", f"{LOCALHOST}:{self.port}",
                                    "--workers", str(workers), "--threads", str(threads),
                                    "web.wsgi:app"])
        try:
            wait_until("Berth's web (gunicorn)", lambda: http_status(self.port, "/healthz") == 200,
                       time.monotonic() + timeout, Proc(popen.pid, None, popen), self.log_path("web"))
        except TestBedError:
            self.stop("web")
            raise

    def start_worker(self, name: str = "worker", *, concurrency: int = 2,
                     **env: str) -> subprocess.Popen:
        """A Celery worker (both queues); `env` overrides this Berth's environment for it."""
        return self._spawn(name, [str(self.bin / "celery"), "-A", "berth.worker", "worker",
                                  "--loglevel", "INFO", "--concurrency", str(concurrency),
                                  "--hostname", f"{name}@%h"], env)

    def start_beat(self) -> subprocess.Popen:
        return self._spawn("beat", [str(self.bin / "celery"), "-A", "berth.worker", "beat",
                                    "--loglevel", "INFO"])

    @property
    def workers(self) -> list[str]:
        return [name for name in self.processes if name.startswith("worker")]

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Signal a process's whole group (pool children too); SIGKILL it if it outlives
        STOP_TIMEOUT_S."""
        self._stop_at_once([name], sig)

    def kill(self, name: str) -> None:
        """kill -9 a process and its children at once, as a crash would (e.g. a worker mid-task)."""
        self.stop(name, signal.SIGKILL)

    def kill_workers(self, sig: int = signal.SIGKILL) -> list[str]:
        """Signal every worker at once (so none finishes another's task meanwhile), wait for
        them to go, and return their names for start_workers()."""
        names = self.workers
        self._stop_at_once(names, sig)
        return names

    def start_workers(self, names: list[str]) -> None:
        for name in names:
            self.start_worker(name)

    def stop_all(self) -> None:
        """Beat first (nothing new is scheduled), then the workers and web, at once."""
        self.stop("beat")
        self._stop_at_once(list(self.processes), signal.SIGTERM)

    def _stop_at_once(self, names: list[str], sig: int) -> None:
        popens = {name: self.processes.pop(name) for name in names if name in self.processes}
        for popen in popens.values():
            if popen.poll() is None:
                _signal_group(popen, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for popen in popens.values():
            try:
                popen.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                _signal_group(popen, signal.SIGKILL)
                popen.wait(timeout=STOP_TIMEOUT_S)

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        if name in self.processes and self.processes[name].poll() is None:
            raise TestBedError(f"Berth's {name} is already running (pid {self.processes[name].pid})")
        proc = Proc.spawn(argv, self.log_path(name), env={**self.env, **(env or {})},
                          cwd=REPOSITORY)
        self.processes[name] = proc.popen
        return proc.popen

    # -- logs and API -----------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log(self, name: str, limit: int = 4000) -> str:
        """The last `limit` characters of a process's log."""
        path = self.log_path(name)
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""

    def log_size(self, name: str) -> int:
        path = self.log_path(name)
        return path.stat().st_size if path.exists() else 0

    def log_since(self, name: str, offset: int) -> str:
        with self.log_path(name).open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def api(self, method: str, path: str, auth: tuple[str, str] | None = ("admin", None),
            **kwargs):
        """A requests.Response from Berth's API, as `admin` unless `auth` says otherwise."""
        import requests  # noqa: PLC0415 - needs the virtualenv

        if auth is not None and auth[1] is None:
            auth = (auth[0], self.admin_password)
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, auth=auth, **kwargs)


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass
