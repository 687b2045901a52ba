"""Reconcile at fleet size: does a round over 500 hosts and 1,000 services of 10 replicas stay
cheap when nothing changes, how fast and at what CPU cost does it converge from zero, and
how long does one CPU sample of every container take?

Berth's real code (the round, its database, the docker SDK client, the CPU collector) runs in
this process against hollow engines (benchmarks/hollow.py) in a child process of their own,
so the CPU time measured here is Berth's. The round is `berth.workloads.round.run_round` when
that module exists, else the body of the `reconcile_all` task (one pass per application,
each listing every host). Hosts are registered with `add_host` and kept "up" with fresh
heartbeats before each round, as the probe task would; applications are created with
`create_application` (one service each unless --services-per-application says otherwise).

    .venv/bin/python benchmarks/reconcile.py [--hosts 500] [--services 1000] [--replicas 10]
        [--database sqlite|URL] [--max-seconds 3600] [--no-sample]

Prints a table and, as its last line, one JSON object: hosts, services, steady_round_s,
engine_calls_per_steady_round, converge_s, cpu_ms_per_container, cpu_sample_round_s.
"""
from __future__ import annotations

import os
import sys

# Python puts this script's folder first on sys.path; benchmarks/token.py there would shadow
# the standard module `token`. Drop it before importing anything else.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "platform"))

from sqlalchemy import func, select, update  # noqa: E402

from berth import db, migrate  # noqa: E402
from berth.clock import utcnow  # noqa: E402
from berth.config import Config  # noqa: E402
from berth.hosts import services as hosts  # noqa: E402
from berth.models import ContainerInstance, Host, Service  # noqa: E402
from berth.workloads import definitions  # noqa: E402

IMAGE = "127.0.0.1:5000/bench/app:1"


class Deadline(Exception):
    pass


def round_entry(config: Config):
    """(name, fn) of the round this tree has: the new one-listing-per-host round if present."""
    try:
        from berth.workloads.round import run_round
    except ImportError:
        from berth.celery_app import configure_celery
        from berth.workloads import tasks

        configure_celery(config)
        return "berth.workloads.tasks.reconcile_all (body)", lambda: tasks.reconcile_all.run()
    return "berth.workloads.round.run_round", lambda: run_round(config,
                                                                connect=hosts.default_connect)


class Hollow:
    """The hollow engines' child process, and its control port."""

    def __init__(self, engines: int, latency_scale: float, max_seconds: float):
        command = [sys.executable, str(REPOSITORY / "benchmarks" / "hollow.py"),
                   "--engines", str(engines), "--image", IMAGE, "--latency-scale",
                   str(latency_scale), "--max-seconds", str(max_seconds)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"hollow engines did not start (exit {self.process.wait(10)})")
        started = json.loads(line)
        self.urls, self.control = started["urls"], started["control"]

    def seed(self, containers: list) -> list[str]:
        request = urllib.request.Request(self.control + "/hollow/seed", method="POST",
                                         data=json.dumps({"containers": containers}).encode())
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())["ids"]

    def state(self) -> dict:
        with urllib.request.urlopen(self.control + "/hollow/calls", timeout=30) as answer:
            return json.loads(answer.read())

    def cpu_s(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # hollow.py stops when its stdin closes
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(15)


def machine_facts() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import docker
    import sqlalchemy
    return (f"cpu={model}, cpus={os.cpu_count()}, kernel={platform.release()}, "
            f"python={platform.python_version()}, docker_sdk={docker.__version__}, "
            f"sqlalchemy={sqlalchemy.__version__}, sqlite={sqlite3.sqlite_version}")


def register_hosts(urls: list[str]) -> None:
    for start in range(0, len(urls), 100):
        with db.unit_of_work():
            for number, url in enumerate(urls[start:start + 100], start=start + 1):
                host = hosts.add_host(f"hollow-{number:04d}", url, cluster="bench",
                                      pool=f"p{number % 5}", idc=f"idc{number % 2}",
                                      connect=hosts.default_connect)
                host.liveness, host.last_heartbeat_at = "up", utcnow()


def heartbeat() -> None:
    """What a probe round records for hosts that answer (not part of a reconcile round)."""
    with db.unit_of_work() as session:
        session.execute(update(Host).values(liveness="up", last_heartbeat_at=utcnow()))


def create_applications(services: int, per_app: int, replicas: int, cpus: float) -> int:
    apps = 0
    for first in range(0, services, per_app * 50):
        with db.unit_of_work():
            for number in range(first, min(services, first + per_app * 50), per_app):
                raw = {"name": f"app{number // per_app:04d}", "services": [
                    {"name": f"s{k}", "image": IMAGE, "replicas": replicas, "cpus": cpus,
                     "memory": 16 * 2**20, "command": ["sleep", "3600"]}
                    for k in range(min(per_app, services - number))]}
                definitions.create_application(raw, actor="bench")
                apps += 1
    return apps


def db_counts() -> tuple[int, int]:
    with db.unit_of_work() as session:
        running = session.scalar(select(func.count()).select_from(ContainerInstance)
                                 .where(ContainerInstance.state == "running"))
        healthy = session.scalar(select(func.count()).select_from(Service)
                                 .where(Service.status == "healthy"))
    return running, healthy


def seed_fleet(hollow: "Hollow", replicas: int, cpus: float) -> int:
    """Every service's replicas running on the engines and recorded, without a round: hosts
    in turn. Only for --sample-only, which measures the CPU sample round alone."""
    with db.unit_of_work() as session:
        host_ids = {url: host_id for host_id, url in session.execute(select(Host.id, Host.endpoint))}
        order = [host_ids[url] for url in hollow.urls]
        services = session.execute(select(Service.id, Service.name, Service.application_id)
                                   .order_by(Service.id)).all()
        wanted = [(service, slot, n % len(order)) for n, (service, slot) in enumerate(
            (service, slot) for service in services for slot in range(replicas))]
        for start in range(0, len(wanted), 2000):
            batch = wanted[start:start + 2000]
            names = [f"a{service.application_id}-{service.name}-1-{slot}"
                     for service, slot, _ in batch]
            ids = hollow.seed([[index, name, IMAGE, {"io.berth.managed": "1"}, int(cpus * 1e9)]
                               for (_s, _slot, index), name in zip(batch, names)])
            session.execute(ContainerInstance.__table__.insert(), [
                {"service_id": service.id, "host_id": order[index], "slot": slot, "revision": 1,
                 "name": name, "container_id": container_id, "state": "running",
                 "restarts": 0, "created_at": utcnow(), "updated_at": utcnow()}
                for (service, slot, index), name, container_id in zip(batch, names, ids)])
    return len(wanted)


def timed_round(run) -> tuple[float, float, object]:
    heartbeat()
    wall, cpu = time.perf_counter(), time.process_time()
    with db.unit_of_work():
        summary = run()
    return time.perf_counter() - wall, time.process_time() - cpu, summary


def calls_between(before: dict, after: dict) -> dict[str, int]:
    routes = set(before["calls"]) | set(after["calls"])
    delta = {r: after["calls"].get(r, 0) - before["calls"].get(r, 0) for r in routes}
    return {r: n for r, n in sorted(delta.items()) if n}


def cpu_sample_round(config: Config, connect) -> tuple[float, float, int, str]:
    """One call of the collector (as the collect_container_cpu task makes it): wall s, CPU s,
    how many instances it recorded a CPU% for, which collector."""
    from berth.workloads import metrics

    heartbeat()
    wall, cpu = time.perf_counter(), time.process_time()
    with db.unit_of_work():
        if hasattr(metrics, "sample_round"):  # the one-shot collector (keeps the previous sample)
            sampled = metrics.collect_cpu(config)
            name = "one-shot, previous sample kept"
        else:
            sampled = metrics.collect_cpu(connect=connect)
            name = "stream=false, threads"
    return time.perf_counter() - wall, time.process_time() - cpu, sampled, name


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--services-per-application", type=int, default=1)
    parser.add_argument("--cpus", type=float, default=0.05, help="CPU limit of each replica")
    parser.add_argument("--latency-scale", type=float, default=1.0,
                        help="multiplies the hollow engines' per-call delays")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a fresh file) or a SQLAlchemy URL of an empty database")
    parser.add_argument("--max-rounds", type=int, default=30, help="bound on converge rounds")
    parser.add_argument("--no-sample", action="store_true", help="skip the CPU sample rounds")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of the last CPU sample round to FILE")
    parser.add_argument("--sample-only", action="store_true",
                        help="no reconcile rounds: seed the containers, measure CPU sampling")
    parser.add_argument("--max-seconds", type=int, default=3600,
                        help="hard bound on the whole run (SIGALRM), s")
    args = parser.parse_args()

    def on_alarm(signum, frame):
        raise Deadline(f"the benchmark exceeded --max-seconds {args.max_seconds}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.max_seconds)
    command = shlex.join([".venv/bin/python", "benchmarks/reconcile.py", *sys.argv[1:]])
    open_files = raise_open_files()
    target = args.services * args.replicas
    workdir = tempfile.TemporaryDirectory(prefix="berth-reconcile-bench-")
    hollow = None
    try:
        hollow = Hollow(args.hosts, args.latency_scale, args.max_seconds + 60)
        url = (f"sqlite:///{workdir.name}/berth.sqlite" if args.database == "sqlite"
               else args.database)
        migrate.upgrade(url)
        db.configure(url)
        # Heartbeats are refreshed before each round (see heartbeat()); a round of the old
        # code takes minutes, longer than heartbeats stay fresh, and no probe runs meanwhile.
        config = Config.from_env({"BERTH_INSTANCE": workdir.name}, probe_interval_s=3600.0)
        began = time.perf_counter()
        register_hosts(hollow.urls)
        apps = create_applications(args.services, args.services_per_application,
                                   args.replicas, args.cpus)
        setup_s = time.perf_counter() - began
        entry_name, run = ("none (--sample-only)", None) if args.sample_only \
            else round_entry(config)
        print(f"# reconcile at fleet size: {args.hosts} hollow hosts, {args.services} services "
              f"({apps} applications) x {args.replicas} replicas = {target} containers")
        print(f"command: {command}")
        print(f"round: {entry_name}; database: {url.split('://')[0]}; open files: {open_files}")
        print(f"machine: {machine_facts()}")
        print(f"setup (hosts + applications): {setup_s:.1f} s")

        rows = []
        if args.sample_only:
            print(f"seeded {seed_fleet(hollow, args.replicas, args.cpus)} running containers "
                  "(no rounds: --sample-only)")
            args.max_rounds = 0
        wall0, cpu0, hollow_cpu0 = time.perf_counter(), time.process_time(), hollow.cpu_s()
        calls0 = hollow.state()
        converged_at = None
        for number in range(1, args.max_rounds + 1):
            before = hollow.state()
            wall, cpu, _summary = timed_round(run)
            after = hollow.state()
            running, healthy = db_counts()
            at_engines = after["containers"].get("running", 0)
            calls = calls_between(before, after)
            rows.append((f"converge {number}", wall, cpu, sum(calls.values()), at_engines,
                         running, healthy, calls))
            print(f"  converge round {number}: {wall:.1f} s, {sum(calls.values())} engine calls, "
                  f"{at_engines} running, {healthy} healthy services", file=sys.stderr, flush=True)
            if at_engines >= target and running >= target and healthy >= args.services:
                converged_at = time.perf_counter()
                break
        converge_cpu = time.process_time() - cpu0
        converge_hollow_cpu = hollow.cpu_s() - hollow_cpu0
        converge_calls = sum(calls_between(calls0, hollow.state()).values())
        converge_s = (converged_at - wall0) if converged_at else None

        steady_wall = steady_calls = None
        if not args.sample_only:
            before = hollow.state()
            steady_wall, steady_cpu, _summary = timed_round(run)
            after = hollow.state()
            steady_calls = calls_between(before, after)
            running, healthy = db_counts()
            rows.append(("steady", steady_wall, steady_cpu, sum(steady_calls.values()),
                         after["containers"].get("running", 0), running, healthy, steady_calls))

        samples = []
        if not args.no_sample:
            for number in (1, 2):  # the second one has a previous sample to compare with
                before = hollow.state()
                profile = None
                if args.profile and number == 2:
                    import cProfile
                    profile = cProfile.Profile()
                    profile.enable()
                hollow_before = hollow.cpu_s()
                wall, cpu, sampled, collector = cpu_sample_round(config, hosts.default_connect)
                hollow_cpu = hollow.cpu_s() - hollow_before
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(args.profile)
                after = hollow.state()
                calls = calls_between(before, after)
                calls["(new connections)"] = after["connections"] - before["connections"]
                samples.append((number, wall, cpu, sampled, calls, collector, hollow_cpu))

        print()
        print("| round | wall s | Berth CPU s | engine calls | running (engines) | running (rows) "
              "| healthy services | calls by route |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, wall, cpu, ncalls, engines_running, rows_running, healthy, calls in rows:
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {ncalls} | {engines_running} | "
                  f"{rows_running} | {healthy} | {', '.join(f'{r} {n}' for r, n in calls.items())} |")
        if samples:
            print()
            print("| CPU sample | wall s | Berth CPU s | CPU ms per container | hollow engines' "
                  "CPU s | recorded | calls |")
            print("|---|---:|---:|---:|---:|---:|---|")
            for number, wall, cpu, sampled, calls, collector, hollow_cpu in samples:
                print(f"| {number} ({collector}) | {wall:.2f} | {cpu:.2f} | "
                      f"{cpu * 1000 / max(1, target):.3f} | {hollow_cpu:.2f} | {sampled} | "
                      f"{', '.join(f'{r} {n}' for r, n in calls.items())} |")
        print()
        if converge_s is None and not args.sample_only:
            print(f"NOT CONVERGED within {args.max_rounds} rounds")
        print(f"converge: {converge_s and round(converge_s, 1)} s, {len(rows) - 1} rounds, "
              f"{converge_calls} engine calls, Berth CPU {converge_cpu:.1f} s "
              f"({converge_cpu * 1000 / max(1, target):.2f} ms per container), hollow engines' "
              f"CPU {converge_hollow_cpu:.1f} s")
        result = {
            "hosts": args.hosts, "services": args.services, "replicas": args.replicas,
            "round": entry_name,
            "steady_round_s": steady_wall and round(steady_wall, 3),
            "engine_calls_per_steady_round": None if steady_calls is None
            else sum(steady_calls.values()),
            "converge_s": converge_s and round(converge_s, 2),
            "cpu_ms_per_container": None if args.sample_only
            else round(converge_cpu * 1000 / max(1, target), 3),
            "cpu_sample_round_s": None,
        }
        if samples:
            result["cpu_sample_round_s"] = round(samples[-1][1], 3)
            result["cpu_sample_recorded"] = samples[-1][3]
        print(json.dumps(result))
        return 0
    finally:
        signal.alarm(0)
        if hollow is not None:
            hollow.stop()
        db.session.remove()
        workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
