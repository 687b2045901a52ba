"""The integration environment: the test bed's real parts plus a real Berth.

One session starts (and stops at the end, also on failure or Ctrl-C):
- Berth's web (gunicorn) and a Celery worker on the embedded defaults, in a fresh instance;
- the test bed (scripts/testbed.py): three dockerd, a primary registry whose `auth.token`
  and notifications point at that Berth, a mirror, PostgreSQL and Redis.
Without root or the Debian packages the parts cannot start: the tests are skipped, except
under CI=true, where a missing part is a failure.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from berth import accounts, db, migrate
from berth.config import Config
from berth.projects import services as projects
from berth.projects.registry_config import guard_settings
from tests.support import REPOSITORY, basic_auth, require_parts, wait_for

sys.path.insert(0, str(REPOSITORY / "scripts"))
from testbed import TestBed, TestBedError, free_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "integration-admin"
MISSING = ("dockerd", "docker-registry", "redis-server")


def _missing_parts() -> list[str]:
    missing = [name for name in MISSING if shutil.which(name) is None]
    if os.geteuid() != 0:
        missing.append("root (dockerd needs it)")
    return missing


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class Berth:
    """A running Berth: its URL, its configuration, and processes to manage."""

    url: str
    config: Config
    env: dict[str, str]
    processes: dict[str, subprocess.Popen]
    logs: Path

    def api(self, method: str, path: str, auth=("admin", ADMIN_PASSWORD), **kwargs):
        headers = basic_auth(*auth) if auth else {}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def start_web(self) -> None:
        log = (self.logs / "web.log").open("a")
        self.processes["web"] = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--config", "python:web.gunicorn_conf", "--bind",
             self.url.removeprefix("http://"), "--workers", "2", "--threads", "4", "web.wsgi:app"],
            cwd=REPOSITORY, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)

        def answers():
            try:
                return requests.get(self.url + "/healthz", timeout=2).ok
            except requests.RequestException:
                return False

        wait_for(answers, 60, "Berth's web process to answer /healthz")

    def start_worker(self, name: str = "worker", **env) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("a")
        proc = subprocess.Popen(
            [str(VENV_BIN / "celery"), "-A", "berth.worker", "worker", "--loglevel", "INFO",
             "--concurrency", "2", "--hostname", f"{name}@%h"],
            cwd=REPOSITORY, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.processes[name] = proc
        return proc

    def start_beat(self) -> subprocess.Popen:
        log = (self.logs / "beat.log").open("a")
        proc = subprocess.Popen(
            [str(VENV_BIN / "celery"), "-A", "berth.worker", "beat", "--loglevel", "INFO"],
            cwd=REPOSITORY, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.processes["beat"] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text()[-4000:] if path.exists() else ""


def _prepare_berth(instance: Path, port: int, logs: Path) -> Berth:
    """A migrated instance with `admin` and the public project `library`; nothing started."""
    env = dict(os.environ, BERTH_INSTANCE=str(instance), BERTH_ADMIN_PASSWORD=ADMIN_PASSWORD,
               PATH=f"{VENV_BIN}:{os.environ['PATH']}", BERTH_TOKEN_LIFETIME_S="60",
               BERTH_PROBE_INTERVAL_S="1", BERTH_PROBE_TIMEOUT_S="2",
               BERTH_PROBE_FAILURES_FOR_DOWN="2", BERTH_RECONCILE_INTERVAL_S="2",
               # Long enough for a healthy dependency on a loaded CI machine, short enough
               # to watch a sick one fail.
               BERTH_DEPENDENCY_TIMEOUT_S="30", BERTH_METRICS_INTERVAL_S="2")
    config = Config.from_env(env)
    migrate.upgrade(config.database_url)
    db.configure(config.database_url)
    with db.unit_of_work():
        admin, _ = accounts.ensure_admin(ADMIN_PASSWORD)
        if projects.find_project("library") is None:
            projects.create_project("library", public=True, actor=admin)
    return Berth(f"http://127.0.0.1:{port}", config, env, {}, logs)


@pytest.fixture(scope="session")
def integration_root(tmp_path_factory):
    require_parts(_missing_parts(), "run scripts/test as root")
    return tmp_path_factory.mktemp("integration")


@pytest.fixture(scope="session")
def environment(integration_root):
    """Berth and the test bed, each knowing the other's address.

    The registry must know Berth's URL before it starts and Berth must know the registry's,
    so: Berth's web starts first (the bed's image push needs its token service), then the
    bed, then web and worker start again with the registry's URL."""
    logs = integration_root / "logs"
    logs.mkdir()
    berth = _prepare_berth(integration_root / "instance", free_port(), logs)
    testbed = TestBed(engines=3, registry_config={"primary": guard_settings(berth.config, berth.url)},
        image_push_auth={"username": "admin", "password": ADMIN_PASSWORD})
    try:
        berth.start_web()
        testbed.start()
        berth.stop("web")
        berth.env["BERTH_REGISTRY_URL"] = testbed.state["registries"]["primary"]["url"]
        berth.config = Config.from_env(berth.env)
        berth.start_web()
        berth.start_worker()
        berth.start_beat()
        yield berth, testbed
    except TestBedError as error:
        pytest.fail(f"the test bed did not start: {error}")
    finally:
        for name in list(berth.processes):
            berth.stop(name)
        testbed.stop()


@pytest.fixture(scope="session")
def berth_app(environment) -> Berth:
    return environment[0]


@pytest.fixture(scope="session")
def bed(environment) -> TestBed:
    return environment[1]


@pytest.fixture(scope="session")
def registry_host(bed) -> str:
    return bed.state["registries"]["primary"]["host"]


@pytest.fixture(scope="session")
def fleet(environment) -> dict[str, int]:
    """The test bed's engines registered once as hosts (one record per engine), by name."""
    from berth.hosts import services

    berth, testbed = environment
    db.configure(berth.config.database_url)
    ids = {}
    with db.unit_of_work():
        for engine in testbed.state["engines"]:
            host = services.add_host(f"bed-{engine['name']}", engine["url"], cluster="testbed",
                                     pool="p1", labels={"engine": engine["name"]},
                                     port_range=tuple(engine["port_range"]))
            db.session.flush()
            ids[engine["name"]] = host.id
    return ids


@pytest.fixture
def database(berth_app):
    """This process's session on the running Berth's database."""
    db.configure(berth_app.config.database_url)
    yield db.session
    db.session.remove()
