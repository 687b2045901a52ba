"""The web pages at fleet size: how long do the dashboard, the services list, the hosts list and
a service page take with 500 hosts, 1,000 services and 10,000 instances in PostgreSQL?

Starts a private PostgreSQL through the test bed (scripts/testbed: no engines, no registry, no
Redis), runs `berth release` on it (migrations, the `admin` system administrator), inserts the
fleet directly with SQLAlchemy bulk inserts (pages only read the database, so no engines are
needed): one cluster with 10 pools, --hosts hosts (up, heartbeat now, 32 CPUs / 64 GiB, two
labels), --services services in applications of 10 services each (one project), --instances
running instances spread evenly over the services (10 each at the defaults) and round-robin
over the hosts, one revision per service and 200 audit events.

Then starts gunicorn exactly as the Procfile does (on a free 127.0.0.1 port), logs in as
`admin` (a system administrator: sees every application, the worst case) through the login
form, and for each page: --warmup requests, then --requests requests one after the other from
one keep-alive client, every answer checked (200 and a marker of the page). Measured pages:

  dashboard      GET /           (the whole dashboard)
  overview       GET /overview   (the partial htmx refreshes every 10 s)
  services       GET /services/
  hosts          GET /hosts/
  hosts_table    GET /hosts/table (the partial htmx refreshes every 10 s)
  service_page   GET /services/app000/svc0000 (a service with 10 instances)

`dashboard_p99_ms` in the JSON is the slower of `/` and `/overview`. The SQL statements each
page runs are counted in-process (the same app on the same database, Flask's test client), to
show N+1 loads. Target: every p99 < 50 ms.

Prints a table, the command line and the machine, and as its last line one JSON object. Exits 1
if any request failed. gunicorn and PostgreSQL are stopped in a `finally`, on Ctrl-C too.

    .venv/bin/python benchmarks/pages.py [--hosts 500] [--services 1000] [--instances 10000]
        [--requests 200] [--warmup 20]
"""
from __future__ import annotations

import os
import sys

# benchmarks/token.py would shadow the standard module `token` (imported through `inspect`):
# drop this folder from the path before importing anything else.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(_HERE).parent
for _entry in (str(ROOT), str(ROOT / "scripts")):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

from sqlalchemy import create_engine, event, func, insert, select, text  # noqa: E402

from berth.clock import utcnow  # noqa: E402
from berth.models import (Application, Cluster, ContainerInstance, Event, Host, Pool,  # noqa: E402
                          Project, Service, ServiceRevision)

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "bench-admin-password-1"
SERVICES_PER_APP = 10
POOLS = 10
EVENTS = 200
IMAGE = "127.0.0.1:5000/bench/web:1"
TARGET_MS = 50.0


# --- the fleet, as rows ---------------------------------------------------------------------

def _next_ids(connection, *models) -> dict:
    return {model: (connection.execute(select(func.max(model.id))).scalar() or 0) + 1
            for model in models}


def populate(connection, hosts: int, services: int, instances: int) -> dict:
    """Insert the fleet with bulk inserts on `connection` (committed by the caller).
    Returns the names the pages are asked about."""
    now = utcnow()
    ids = _next_ids(connection, Cluster, Pool, Host, Project, Application, Service,
                    ServiceRevision, ContainerInstance, Event)
    cluster_id, project_id = ids[Cluster], ids[Project]
    connection.execute(insert(Cluster), [{"id": cluster_id, "name": "bench", "description": ""}])
    pool_ids = [ids[Pool] + i for i in range(POOLS)]
    connection.execute(insert(Pool), [{"id": pid, "cluster_id": cluster_id, "name": f"pool{i}"}
                                      for i, pid in enumerate(pool_ids)])
    host_ids = [ids[Host] + i for i in range(hosts)]
    connection.execute(insert(Host), [{
        "id": hid, "name": f"host{i:04d}", "pool_id": pool_ids[i % POOLS],
        "endpoint": f"tcp://127.0.0.1:{20000 + i}", "idc": f"idc{i % 3}",
        "labels": {"rack": f"r{i % 20}", "disk": "ssd"}, "cpus": 32.0, "memory": 64 * 2**30,
        "kernel": "6.1.0", "engine_version": "20.10.24", "liveness": "up",
        "last_heartbeat_at": now, "admin_state": "active", "created_at": now,
    } for i, hid in enumerate(host_ids)])
    connection.execute(insert(Project), [{"id": project_id, "name": "bench", "public": False,
                                          "created_at": now}])
    apps = math.ceil(services / SERVICES_PER_APP)
    app_ids = [ids[Application] + i for i in range(apps)]
    connection.execute(insert(Application), [{"id": aid, "name": f"app{i:03d}",
                                              "project_id": project_id, "created_at": now}
                                             for i, aid in enumerate(app_ids)])
    service_rows = [{
        "id": ids[Service] + i, "application_id": app_ids[i // SERVICES_PER_APP],
        "name": f"svc{i:04d}", "image": IMAGE, "command": None, "environment": {"MODE": "bench"},
        "ports": [8080], "cpus": 0.5, "memory": 256 * 2**20, "constraints": [],
        "healthcheck": None, "replicas": 0, "revision": 1, "status": "healthy",
        "endpoints": [], "created_at": now,
    } for i in range(services)]
    per_service = [instances // services + (1 if i < instances % services else 0)
                   for i in range(services)] if services else []
    for row, count in zip(service_rows, per_service):
        row["replicas"] = count
        row["endpoints"] = [f"127.0.0.1:{30000 + (row['id'] * 10 + s) % 30000}" for s in range(min(count, 3))]
    connection.execute(insert(Service), service_rows)
    connection.execute(insert(ServiceRevision), [{
        "id": ids[ServiceRevision] + i, "service_id": row["id"], "number": 1,
        "spec": {"image": IMAGE, "cpus": 0.5, "memory": 256 * 2**20}, "created_at": now,
        "created_by": "bench"} for i, row in enumerate(service_rows)])
    instance_rows, n = [], 0
    for row, count in zip(service_rows, per_service):
        for slot in range(count):
            instance_rows.append({
                "id": ids[ContainerInstance] + n, "service_id": row["id"],
                "host_id": host_ids[n % hosts] if hosts else None, "slot": slot, "revision": 1,
                "name": f"berth-{row['name']}-{slot}-1", "container_id": f"{n:064x}",
                "host_port": 20000 + n % 10000, "state": "running", "health": "healthy",
                "cpu_percent": 12.5, "created_at": now, "updated_at": now})
            n += 1
    for start in range(0, len(instance_rows), 5000):
        connection.execute(insert(ContainerInstance), instance_rows[start:start + 5000])
    connection.execute(insert(Event), [{
        "id": ids[Event] + i, "at": now - timedelta(seconds=EVENTS - i), "kind": "service.scale",
        "subject_type": "service", "subject": f"app{(i % apps) if apps else 0:03d}/svc{i % max(services, 1):04d}",
        "actor": "admin", "message": "scaled", "data": {}} for i in range(EVENTS)])
    if connection.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        for model in ids:
            table = model.__tablename__
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
    return {"service_page": f"/services/app000/svc0000", "service_instances": per_service[0]
            if per_service else 0}


def pages(names: dict) -> list[tuple[str, str, str]]:
    """(label, path, a marker the answer must contain)."""
    return [("dashboard", "/", "<html"), ("overview", "/overview", ""),
            ("services", "/services/", "svc0000"), ("hosts", "/hosts/", "host"),
            ("hosts_table", "/hosts/table", "hosts-table"),
            ("service_page", names["service_page"], "svc0000")]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(figures: dict, hosts: int, services: int, instances: int) -> dict:
    p99 = {label: round(percentile(ms, 0.99), 1) for label, ms in figures.items()}
    return {"hosts": hosts, "services": services, "instances": instances,
            "dashboard_p99_ms": max(p99.get("dashboard", 0), p99.get("overview", 0)),
            "overview_p99_ms": p99.get("overview"), "services_p99_ms": p99.get("services"),
            "hosts_p99_ms": p99.get("hosts"), "hosts_table_p99_ms": p99.get("hosts_table"),
            "service_page_p99_ms": p99.get("service_page"), "target_ms": TARGET_MS}


# --- statements per page, in-process ----------------------------------------------------------

def count_statements(app, paths: list[str]) -> dict[str, int]:
    from berth import db

    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page).group(1)
    client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                "csrf_token": token})
    counts = {}
    for path in paths:
        seen = []

        def count(*_args):
            seen.append(1)

        with app.app_context():
            engine = db.session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            answer = client.get(path)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        if answer.status_code != 200:
            raise SystemExit(f"in-process GET {path}: {answer.status_code}")
        counts[path] = len(seen)
    db.session.remove()
    return counts


# --- the server and the client ---------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(instance: Path, database_url: str, metrics_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    for name in ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "SECRET_KEY",
                 "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY"):
        env.pop(name, None)
    env.update(BERTH_INSTANCE=str(instance), BERTH_ADMIN_PASSWORD=ADMIN_PASSWORD,
               DATABASE_URL=database_url, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def gunicorn_argv(bind: str) -> list[str]:
    # The Procfile's `web` line, WEB_CONCURRENCY at its default of 2.
    return [str(BIN / "gunicorn"), "--config", "python:web.gunicorn_conf", "--bind", bind,
            "--workers", "2", "--threads", "4", "--access-logfile", "-", "web.wsgi:app"]


def stop(process: subprocess.Popen | None) -> None:
    import signal

    if process is None or process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def log_in(session, base: str) -> None:
    page = session.get(base + "/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = session.post(base + "/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                                 "csrf_token": token}, timeout=30)
    if answer.status_code != 200 or "/login" in answer.url:
        raise SystemExit(f"login failed: {answer.status_code} {answer.url}")


def measure(session, base: str, page_list, warmup: int, requests: int) -> tuple[dict, dict, list]:
    figures, sizes, errors = {}, {}, []
    for label, path, marker in page_list:
        for _ in range(warmup):
            session.get(base + path, timeout=30)
        samples = []
        for _ in range(requests):
            began = time.perf_counter()
            answer = session.get(base + path, timeout=30, allow_redirects=False)
            body = answer.text
            samples.append((time.perf_counter() - began) * 1000)
            if answer.status_code != 200 or marker not in body:
                errors.append(f"{path}: {answer.status_code}")
        figures[label], sizes[label] = samples, len(answer.content)
    return figures, sizes, errors


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"nproc {os.cpu_count()}, {cpu}, load {os.getloadavg()[0]:.1f}, "
            f"Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)

    import requests as http
    from testbed import TestBed

    bed = server = None
    work = Path(tempfile.mkdtemp(prefix="berth-pages-"))
    try:
        bed = TestBed(engines=0, registries=(), postgres=True, redis=False)
        bed.start()
        database_url = bed.postgres_url
        instance, metrics = work / "instance", work / "metrics"
        metrics.mkdir()
        env = server_env(instance, database_url, metrics)
        subprocess.run([str(BIN / "berth"), "release"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        began = time.monotonic()
        engine = create_engine(database_url)
        with engine.begin() as connection:
            names = populate(connection, args.hosts, args.services, args.instances)
            connection.execute(text("ANALYZE"))
        engine.dispose()
        fill_s = time.monotonic() - began

        os.environ.update({k: v for k, v in env.items() if k.startswith("BERTH_")
                           or k in ("DATABASE_URL",)})
        from berth.config import Config
        from web import create_app

        page_list = pages(names)
        statements = count_statements(create_app(Config.from_env(dict(env))),
                                      [path for _, path, _ in page_list])

        port = free_port()
        log = work / "gunicorn.log"
        with open(log, "wb") as out:
            server = subprocess.Popen(gunicorn_argv(f"127.0.0.1:{port}"), cwd=ROOT, env=env,
                                      stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        session = http.Session()
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{log.read_text()[-2000:]}")
            try:
                if session.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except http.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn not healthy after 30 s")
            time.sleep(0.1)
        log_in(session, base)
        figures, sizes, errors = measure(session, base, page_list, args.warmup, args.requests)
    finally:
        stop(server)
        if bed is not None:
            bed.stop()
        shutil.rmtree(work, ignore_errors=True)

    result = summary(figures, args.hosts, args.services, args.instances)
    print(f"fleet: {args.hosts} hosts, {args.services} services, {args.instances} instances "
          f"(inserted in {fill_s:.1f} s); {names['service_instances']} instances on the "
          f"service page; {args.warmup} warm-up + {args.requests} requests per page, one client")
    print(f"{'page':<14} {'path':<28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'KiB':>7} {'SQL':>5}")
    for label, path, _ in page_list:
        ms = figures[label]
        print(f"{label:<14} {path:<28} {percentile(ms, 0.5):>8.1f} {percentile(ms, 0.99):>8.1f} "
              f"{max(ms):>8.1f} {sizes[label] / 1024:>7.1f} {statements[path]:>5}")
    if errors:
        print(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print("machine:", machine(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(json.dumps(result))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
