"""The integration environment: one test bed's real parts, and a real Berth on them, twice.

One session starts the test bed once (scripts/testbed: three dockerd, a primary registry, a
mirror, PostgreSQL and Redis) and, on it, Berth in each environment in turn:
- `embedded`: the defaults, a SQLite database and the embedded broker, one worker;
- `postgres-redis`: a fresh PostgreSQL database, Celery on Redis, two workers.
Each has web (gunicorn), its workers and beat, in an instance of its own: its own secret key
and so its own installation id, and its own token-signing key, to which the primary
registry's `auth.token` and notifications are pointed while it runs. Only one runs at a
time: pytest groups session-parametrized tests by environment, and an environment is torn
down (processes stopped, its containers removed, the registry given back) before the next.

A test that uses `berth_app` (itself or through `fleet` or `database`) runs in every
environment, with the environment in its id (`test_x[postgres-redis]`), unless its module
narrows it: `pytestmark = pytest.mark.berth_environments("embedded")`.

Without root or the Debian packages the parts cannot start: the tests are skipped, except
under CI=true, where a missing part is a failure.
"""
from __future__ import annotations

import itertools
import os
import shutil
import sys
from dataclasses import dataclass

import pytest

from berth import db
from berth.celery_app import celery, configure_celery
from tests.support import REPOSITORY, require_parts

sys.path.insert(0, str(REPOSITORY / "scripts"))
from testbed import TestBed, TestBedError  # noqa: E402
from testbed.berth import Berth  # noqa: E402

ADMIN_PASSWORD = "integration-admin"
MISSING = ("dockerd", "docker-registry", "redis-server")
# Fast enough to watch liveness, healing and autoscaling within a test.
SETTINGS = dict(BERTH_TOKEN_LIFETIME_S="60", BERTH_PROBE_INTERVAL_S="1", BERTH_PROBE_TIMEOUT_S="2",
                BERTH_PROBE_FAILURES_FOR_DOWN="2", BERTH_RECONCILE_INTERVAL_S="2",
                # Long enough for a healthy dependency on a loaded CI machine, short enough
                # to watch a sick one fail.
                BERTH_DEPENDENCY_TIMEOUT_S="30", BERTH_METRICS_INTERVAL_S="2",
                # A pass killed with -9 holds its lease this long before the next takes over.
                BERTH_RECONCILE_LEASE_S="10",
                # Mirrors: a mirror that was down is found healthy and caught up within seconds.
                BERTH_MIRROR_RECONCILE_INTERVAL_S="3",
                # Every test's client is 127.0.0.1: the failed logins that the revocation and
                # limit tests make on purpose must not lock the address for the modules after
                # them. (The per-username limit keeps its default; the unit tests cover both.)
                BERTH_LOGIN_FAILURES_PER_ADDRESS="1000 per 5 minutes")


@dataclass(frozen=True)
class Environment:
    name: str
    workers: int
    postgres_redis: bool = False


ENVIRONMENTS = {e.name: e for e in (Environment("embedded", workers=1),
                                    Environment("postgres-redis", workers=2, postgres_redis=True))}
_databases = itertools.count(1)


def _missing_parts() -> list[str]:
    missing = [name for name in MISSING if shutil.which(name) is None]
    if os.geteuid() != 0:
        missing.append("root (dockerd needs it)")
    return missing


def pytest_configure(config):
    config.addinivalue_line("markers", "berth_environments(*names): run this module's tests "
                            f"on these Berth environments only (of {', '.join(ENVIRONMENTS)})")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def pytest_generate_tests(metafunc):
    if "berth_app" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("berth_environments")
    names = list(marker.args) if marker else list(ENVIRONMENTS)
    unknown = set(names) - set(ENVIRONMENTS)
    if unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown Berth environments "
                                f"{sorted(unknown)}; known: {', '.join(ENVIRONMENTS)}")
    # Session scope: pytest runs every test of one environment before the next one starts.
    metafunc.parametrize("berth_app", names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def integration_root(tmp_path_factory):
    require_parts(_missing_parts(), "run scripts/test as root")
    return tmp_path_factory.mktemp("integration")


@pytest.fixture(scope="session")
def bed(integration_root) -> TestBed:
    """The test bed, shared by every environment. Its primary registry starts without auth
    (the test image is pushed anonymously); each Berth guards it while it runs."""
    testbed = TestBed(engines=3)
    try:
        testbed.start()
        yield testbed
    except TestBedError as error:
        pytest.fail(f"the test bed did not start: {error}")
    finally:
        testbed.stop()


def _environment_settings(environment: Environment, bed: TestBed) -> dict[str, str]:
    if not environment.postgres_redis:
        return {}
    import redis

    database_url = bed.create_database(f"berth_{environment.name.replace('-', '_')}_{next(_databases)}")
    # Redis database 0 is the bed's default, used by tests of their own: stay off it.
    broker, results = (f"redis://127.0.0.1:{bed.state['redis']['port']}/{n}" for n in (1, 2))
    for url in (broker, results):
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    return dict(DATABASE_URL=database_url, BROKER_URL=broker, RESULT_BACKEND=results)


@pytest.fixture(scope="session")
def berth_app(request, bed, integration_root) -> Berth:
    """A running Berth in one environment (the test's parameter), guarding the primary registry."""
    environment = ENVIRONMENTS[request.param]
    folder = integration_root / environment.name
    berth = Berth(folder / "instance", folder / "logs", admin_password=ADMIN_PASSWORD,
                  settings=SETTINGS | _environment_settings(environment, bed))
    try:
        berth.prepare()
        _send_tasks_to(berth)
        berth.guard_registry(bed)
        berth.start(workers=environment.workers)
        yield berth
    finally:
        try:
            berth.stop_all()
            berth.remove_containers(bed)  # the next environment starts on empty engines
        finally:
            berth.release_registry(bed)
            db.session.remove()


def _send_tasks_to(berth: Berth) -> None:
    """Point this process's Celery app (what tests enqueue) at `berth`'s broker and results.

    Celery keeps the connection pool, producer pool and result backend it made first for the
    life of the app, whatever the configuration says later: without dropping them, the second
    environment's tasks would go to the first one's broker. (Only dropped, not closed: kombu
    shares one pool per broker URL process-wide, and hands the same one out again.)"""
    configure_celery(berth.config)
    # What Celery itself does after a fork (Celery._after_fork), and the same for the result
    # backend, cached per app (thread-safe backends) or per thread. This belongs in
    # berth.celery_app.configure_celery; until it is there, here.
    celery._pool = None
    celery.amqp._producer_pool = None
    celery._backend_cache = None
    celery._local.__dict__.pop("backend", None)


@pytest.fixture(scope="session")
def registry_host(bed) -> str:
    return bed.state["registries"]["primary"]["host"]


@pytest.fixture(scope="session")
def fleet(berth_app, bed) -> dict[str, int]:
    """The test bed's engines registered once as hosts in the running Berth's database (one
    record per engine), by name."""
    from berth.hosts import services

    db.configure(berth_app.config.database_url)
    ids = {}
    with db.unit_of_work():
        for engine in bed.state["engines"]:
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


@pytest.fixture(scope="module")
def monitoring(berth_app, bed, fleet):
    """A real Prometheus and Alertmanager on the bed (scripts/testbed/monitoring.py) with the
    configuration this Berth renders (`berth monitoring config`: 1 s scrapes and
    evaluations), and Berth's web restarted to read that Prometheus; given back at the end."""
    import dataclasses

    from berth.monitoring.config import write_all

    bed_monitoring = bed.monitoring(f"berth-{next(_databases)}")
    config = dataclasses.replace(
        berth_app.config, prometheus_berth_url=berth_app.url, prometheus_scrape_interval_s=1.0,
        prometheus_evaluation_interval_s=1.0, alertmanager_url=bed_monitoring.alertmanager_url)
    db.configure(berth_app.config.database_url)
    with db.unit_of_work() as session:
        write_all(session, config, bed_monitoring.dir)
    settings = {"BERTH_PROMETHEUS_URL": bed_monitoring.prometheus_url,
                "BERTH_PROMETHEUS_SCRAPE_INTERVAL_S": "1",
                "BERTH_ALERTMANAGER_URL": bed_monitoring.alertmanager_url}
    bed_monitoring.start()
    try:
        berth_app.stop("web")
        berth_app.env.update(settings)
        berth_app.start_web()
        yield bed_monitoring
    finally:
        bed_monitoring.stop()
        berth_app.stop("web")
        for name in settings:
            berth_app.env.pop(name, None)
        berth_app.start_web()
