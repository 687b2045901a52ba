"""Autoscaling: how long from a service's containers starting to burn CPU to a new replica
running, at Berth's default intervals; and how long one autoscaler round takes at 1,000
services of 10 replicas.

reaction   Starts the test bed (scripts/testbed.py: one dockerd and the primary registry
           guarded by Berth's token service) and a real Berth on the embedded defaults with
           the Procfile's layout (web; a `worker -Q celery` of 4 and a `probes` worker of 2;
           beat), every interval at its default (CPU sampling BERTH_METRICS_INTERVAL_S, host
           probes, reconcile). One service of 1 replica, 0.1 CPU, `sleep 3600`, with a
           policy of 1-4 replicas at 50% of the limit (other settings at their defaults).
           For each of --trials load starts spread evenly over the sampling period (phased
           from the worker's log of collect_container_cpu), `docker exec -d` starts `yes >
           /dev/null` in the container (100% of its limit) and the engine is polled until a
           second container of the service runs. Between trials the load stops, the policy
           is removed, the service goes back to 1 replica and waits for an idle reading.
           Baseline in the same run: an operator's PATCH 1 -> 2 to the replica running (what
           is left once the autoscaler has decided).
decide     In this process, on a fresh SQLite database: 1,000 services of 10 running
           instances each, a third busy, a third idle, a third on target; the pure decide()
           over all of them, and autoscale_all() with its queries and its commit (the
           deploys it would enqueue are counted, not sent).

    .venv/bin/python benchmarks/autoscale.py [--trials 5] [--services 1000] [--replicas 10]
                                             [--skip-reaction] [--timeout 90]
                                             [--metrics-interval S] [--keep]

Prints a table and, as its last line, one JSON object with reaction_s (the worst trial),
reaction_median_s and decide_1000_services_s (the autoscale_all round). Everything it starts
is stopped in `finally`, also on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import os
import sys

# Python puts this script's folder first on sys.path; other benchmark files there (token.py)
# would shadow standard modules of the same name. Drop it before importing anything else.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "scripts"))
sys.path.insert(0, str(REPOSITORY / "platform"))
sys.path.insert(0, str(REPOSITORY))

from berth import db, migrate  # noqa: E402
from berth.engine import LABEL_APPLICATION, LABEL_SERVICE  # noqa: E402
from testbed import LOCALHOST, TestBed  # noqa: E402
from testbed.berth import Berth  # noqa: E402
from tests.support import wait_for  # noqa: E402

ADMIN_PASSWORD = "bench-admin"
MiB = 2**20
APP, SERVICE = "react", "burn"
COLLECT_RECEIVED = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
                              r"Task berth\.workloads\.tasks\.collect_container_cpu\[[^\]]+\] received")


class Interrupted(BaseException):
    pass


def _on_sigterm(signum, _frame):
    raise Interrupted(f"signal {signum}")


def start_procfile_workers(berth: Berth) -> None:
    """The Procfile's layout: `worker -Q celery` (4) and `probes -Q probes` (2). The harness's
    start_worker() consumes both queues, as tests want; this is the production split."""
    celery = [str(Path(sys.executable).parent / "celery"), "-A", "berth.worker", "worker", "--loglevel", "INFO"]
    berth._spawn("worker", [*celery, "-Q", "celery", "--concurrency", "4", "--hostname", "worker@%h"])
    berth._spawn("probes", [*celery, "-Q", "probes", "--concurrency", "2", "--hostname", "probes@%h"])


def engine_get(engine: dict, path: str, timeout: float = 10.0):
    conn = http.client.HTTPConnection(LOCALHOST, engine["port"], timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"{engine['name']}: GET {path} -> {response.status} {body[:200]!r}")
    return json.loads(body)


def docker_cli(engine: dict, *args: str, config_dir: str, timeout: float = 60) -> str:
    env = dict(os.environ, DOCKER_HOST=engine["url"], DOCKER_CONFIG=config_dir)
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} on {engine['name']}: {done.stderr.strip()}")
    return done.stdout.strip()


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "nproc": os.cpu_count(), "loadavg_start": os.getloadavg(),
            "kernel": platform.release(), "python": platform.python_version()}


# -- the reaction --------------------------------------------------------------------------

def containers(engine: dict, running: bool = True) -> list[dict]:
    import urllib.parse

    filters = {"label": [f"{LABEL_APPLICATION}={APP}", f"{LABEL_SERVICE}={SERVICE}"]}
    if running:
        filters["status"] = ["running"]
    query = urllib.parse.urlencode({"all": "1", "filters": json.dumps(filters)})
    return engine_get(engine, f"/v1.41/containers/json?{query}")


def wait_running(engine: dict, n: int, timeout_s: float, poll_s: float = 0.1, at_least: bool = False) -> float:
    """Poll the engine until n (or, `at_least`, n or more) containers of the service run;
    returns when (time.time())."""
    wait_for(lambda: (len(containers(engine)) >= n) if at_least else (len(containers(engine)) == n),
             timeout_s, f"{n} running containers of {APP}/{SERVICE}", interval_s=poll_s)
    return time.time()


def last_collect(berth: Berth) -> float | None:
    """When the worker last received a CPU round (unix time), from its log."""
    found = COLLECT_RECEIVED.findall(berth.log_since("worker", max(0, berth.log_size("worker") - 200_000)))
    if not found:
        return None
    return datetime.strptime(found[-1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def policy_row():
    from sqlalchemy import select

    from berth.models import Application, AutoscalingPolicy, Service

    db.session.rollback()
    return db.session.scalar(select(AutoscalingPolicy).join(Service).join(Application)
                             .where(Application.name == APP, Service.name == SERVICE))


def instance_cpus() -> list[float | None]:
    from sqlalchemy import select

    from berth.models import Application, ContainerInstance, Service

    db.session.rollback()
    found = list(db.session.scalars(
        select(ContainerInstance.cpu_percent).join(Service).join(Application)
        .where(Application.name == APP, Service.name == SERVICE, ContainerInstance.state == "running")))
    db.session.rollback()
    return found


def put_policy(berth: Berth) -> None:
    response = berth.api("PUT", f"/api/v1/applications/{APP}/services/{SERVICE}/autoscaling",
                         json={"min_replicas": 1, "max_replicas": 4, "target_cpu_percent": 50,
                               "cpu_basis": "limit"})
    if response.status_code not in (200, 201):
        raise RuntimeError(f"PUT autoscaling -> {response.status_code}: {response.text[:300]}")


def reset(berth: Berth, engine: dict, config_dir: str, timeout_s: float) -> None:
    """Load off, no policy, back to one replica with an idle CPU reading."""
    for container in containers(engine):
        try:
            docker_cli(engine, "exec", container["Id"], "killall", "yes", config_dir=config_dir)
        except RuntimeError:
            pass  # no burner in this one
    berth.api("DELETE", f"/api/v1/applications/{APP}/services/{SERVICE}/autoscaling")
    response = berth.api("PATCH", f"/api/v1/applications/{APP}/services/{SERVICE}", json={"replicas": 1})
    if response.status_code != 200:
        raise RuntimeError(f"PATCH replicas 1 -> {response.status_code}: {response.text[:300]}")
    wait_running(engine, 1, timeout_s)
    # A reading taken wholly after the load stopped: the next one that is low.
    wait_for(lambda: (lambda cpus: len(cpus) == 1 and cpus[0] is not None and cpus[0] < 2.0)(
        instance_cpus()), timeout_s, "an idle CPU reading of the one replica", interval_s=0.5)


def trial(berth: Berth, engine: dict, config_dir: str, offset_s: float, period_s: float,
          timeout_s: float) -> dict:
    put_policy(berth)
    phase = last_collect(berth)
    if phase is None:
        raise RuntimeError("no CPU round in the worker's log yet")
    start_at = phase + offset_s
    while start_at < time.time() + 1.0:
        start_at += period_s
    time.sleep(start_at - time.time())  # the experiment's schedule, not a wait on a condition
    [container] = containers(engine)
    docker_cli(engine, "exec", "-d", container["Id"], "sh", "-c", "yes > /dev/null",
                       config_dir=config_dir)
    loaded = time.time()
    running = wait_running(engine, 2, timeout_s, poll_s=0.05, at_least=True)
    row = policy_row()
    scaled = row.last_scaled_at.timestamp() if row and row.last_scaled_at else None
    phase_now = last_collect(berth)
    return {"offset_s": offset_s, "phase_in_period_s": (loaded - phase) % period_s,
            "reaction_s": running - loaded,
            "decided_after_s": None if scaled is None else scaled - loaded,
            "started_after_decision_s": None if scaled is None else running - scaled,
            "decision": row.last_decision if row else None, "last_round": phase_now}


def manual_scale(berth: Berth, engine: dict, timeout_s: float) -> float:
    began = time.time()
    response = berth.api("PATCH", f"/api/v1/applications/{APP}/services/{SERVICE}", json={"replicas": 2})
    if response.status_code != 200:
        raise RuntimeError(f"PATCH replicas 2 -> {response.status_code}: {response.text[:300]}")
    return wait_running(engine, 2, timeout_s, poll_s=0.05, at_least=True) - began


def measure_reaction(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="berth-autoscale-"))
    config_dir = str(work / "docker-cli")
    os.makedirs(config_dir)
    (work / "logs").mkdir()
    settings = {"BERTH_METRICS_INTERVAL_S": str(args.metrics_interval)} if args.metrics_interval else {}
    berth = Berth(work / "instance", work / "logs", admin_password=ADMIN_PASSWORD, settings=settings)
    bed = None
    try:
        berth.prepare()
        bed = TestBed(engines=1, registries=("primary",), postgres=False, redis=False)
        bed.start()  # the image is pushed before Berth guards the registry
        berth.guard_registry(bed)
        berth.start_web()
        start_procfile_workers(berth)
        berth.start_beat()
        [engine] = bed.state["engines"]
        from berth.hosts import services as hosts

        with db.unit_of_work():  # up at once: the engine answered (add_host)
            hosts.add_host("bench-e1", engine["url"], cluster="bench", pool="p1",
                           port_range=tuple(engine["port_range"]))
        spec = {"name": APP, "services": [{
            "name": SERVICE, "image": bed.image, "replicas": 1, "command": ["sleep", "3600"],
            "cpus": 0.1, "memory": 16 * MiB}]}
        response = berth.api("POST", "/api/v1/applications", json=spec)
        if response.status_code != 201:
            raise RuntimeError(f"POST application -> {response.status_code}: {response.text[:300]}")
        wait_running(engine, 1, args.timeout)
        period = berth.config.metrics_interval_s
        print(f"Berth {berth.url} on engine {engine['url']}; CPU sampled every {period:g} s, "
              f"hosts probed every {berth.config.probe_interval_s:g} s, reconcile every "
              f"{berth.config.reconcile_interval_s:g} s", flush=True)
        wait_for(lambda: last_collect(berth) is not None, 3 * period + 30, "a first CPU round")

        baseline = manual_scale(berth, engine, args.timeout)
        print(f"baseline: PATCH 1 -> 2 to the replica running: {baseline:.2f} s", flush=True)
        trials = []
        for number in range(args.trials):
            reset(berth, engine, config_dir, args.timeout)
            offset = period * number / args.trials
            result = trial(berth, engine, config_dir, offset, period, args.timeout)
            trials.append(result)
            print(f"trial {number + 1}: load at {result['phase_in_period_s']:.1f} s into the period -> "
                  f"replica running after {result['reaction_s']:.2f} s (decided after "
                  f"{result['decided_after_s'] or float('nan'):.2f} s): {result['decision']}", flush=True)
        reset(berth, engine, config_dir, args.timeout)
        return {"trials": trials, "baseline_manual_scale_s": baseline, "period_s": period}
    finally:
        try:
            berth.stop_all()
            if bed is not None:
                berth.remove_containers(bed)
        finally:
            if bed is not None:
                bed.stop()
            db.session.remove()
            if args.keep:
                print(f"kept {work} (Berth's logs in logs/)")
            else:
                shutil.rmtree(work, ignore_errors=True)


# -- the decision at 1,000 services ----------------------------------------------------------

def measure_decide(args) -> dict:
    from sqlalchemy import insert

    from berth.clock import utcnow
    from berth.models import Application, AutoscalingPolicy, ContainerInstance, Service
    from berth.workloads import access, autoscaling
    from berth.workloads import services as workloads
    from scheduler.orchestration import autoscale

    folder = Path(tempfile.mkdtemp(prefix="berth-autoscale-db-"))
    url = f"sqlite:///{folder / 'berth.sqlite'}"
    migrate.upgrade(url)
    db.configure(url)
    n, replicas = args.services, args.replicas
    load = [90.0, 1.0, 5.0]  # % of one core at 0.1 CPU: 900%, 10%, 50% of the limit
    now = utcnow()
    with db.unit_of_work():
        project = access.project_for_new_by_default()
        db.session.execute(insert(Application), [
            {"id": i + 1, "name": f"a{i}", "project_id": project.id,
             "deploy_started_at": now - timedelta(minutes=10)} for i in range(n)])
        db.session.execute(insert(Service), [
            {"id": i + 1, "application_id": i + 1, "name": "s", "image": "x/y:1", "replicas": replicas,
             "cpus": 0.1, "status": "running"} for i in range(n)])
        db.session.execute(insert(ContainerInstance), [
            {"service_id": i + 1, "slot": s, "revision": 1, "name": f"a{i}-s-{s}", "state": "running",
             "cpu_percent": load[i % 3]} for i in range(n) for s in range(replicas)])
        db.session.execute(insert(AutoscalingPolicy), [
            {"service_id": i + 1, "min_replicas": 1, "max_replicas": 40, "target_cpu_percent": 50,
             "cpu_basis": "limit", "cooldown_s": 60, "scale_down_stabilization_s": 0,
             "recommendations": []} for i in range(n)])

    # The pure decisions alone, on the same data as plain objects.
    policy = autoscale.AutoscalingPolicy(1, 40, 50, "limit", scale_down_stabilization_s=0)
    observed = [autoscale.Observed(replicas, [f"a{i}-s-{s}" for s in range(replicas)],
                                   [autoscale.Sample(f"a{i}-s-{s}", load[i % 3], 0.1) for s in range(replicas)],
                                   running=replicas) for i in range(n)]
    began = time.perf_counter()
    decisions = [autoscale.decide(policy, o, time.time()) for o in observed]
    pure_s = time.perf_counter() - began

    # Baseline, same data: what a round read before (one policy query, then each service's
    # instances and application loaded lazily, as ORM objects), deciding the same, writing nothing.
    from sqlalchemy import select

    began = time.perf_counter()
    with db.unit_of_work():
        for row in db.session.scalars(select(AutoscalingPolicy).where(AutoscalingPolicy.enabled.is_(True))):
            running = [i for i in row.service.instances if i.state == "running"]
            autoscale.decide(autoscaling.pure_policy(row), autoscaling.observed(row.service, running),
                             time.time())
        db.session.rollback()
    naive_s = time.perf_counter() - began
    db.session.remove()

    sent = []
    original = workloads.enqueue
    workloads.enqueue = lambda task, *a, **k: sent.append(task.name)
    try:
        began = time.perf_counter()
        with db.unit_of_work():
            decided = autoscaling.autoscale_all()
        round_s = time.perf_counter() - began
        began = time.perf_counter()
        with db.unit_of_work():
            autoscaling.autoscale_all()  # the next round: everything held (cooldown, window)
        second_s = time.perf_counter() - began
    finally:
        workloads.enqueue = original
        db.session.remove()
        shutil.rmtree(folder, ignore_errors=True)
    directions = {d: sum(x.direction == d for x in decisions) for d in ("up", "down", "none")}
    return {"services": n, "replicas": replicas, "pure_decide_s": pure_s, "autoscale_all_s": round_s,
            "naive_read_and_decide_s": naive_s,
            "autoscale_all_again_s": second_s, "decided": len(decided), "deploys_enqueued": len(sent),
            "directions": directions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="load starts spread over the period")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=90.0, help="bound on each wait, s")
    parser.add_argument("--skip-reaction", action="store_true", help="only the decision at scale")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (Berth's logs)")
    parser.add_argument("--metrics-interval", type=float, default=None,
                        help="BERTH_METRICS_INTERVAL_S for the reaction (default: Berth's default)")
    args = parser.parse_args(argv)
    command = ".venv/bin/python benchmarks/autoscale.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    facts = machine()

    reaction = None if args.skip_reaction else measure_reaction(args)
    decide = measure_decide(args)

    print()
    print(f"command: {command}")
    print(f"machine: {facts['cpu']}, {facts['nproc']} CPUs, kernel {facts['kernel']}, "
          f"Python {facts['python']}, load at start {facts['loadavg_start'][0]:.2f}")
    print()
    print(f"{'measure':<64} {'value':>10}")
    summary = {"reaction_s": None, "reaction_median_s": None,
               "decide_1000_services_s": round(decide["autoscale_all_s"], 3)}
    if reaction:
        times = [t["reaction_s"] for t in reaction["trials"]]
        decided = [t["decided_after_s"] for t in reaction["trials"] if t["decided_after_s"] is not None]
        for t in reaction["trials"]:
            print(f"{'reaction, load at ' + format(t['phase_in_period_s'], '.1f') + ' s into the period':<64}"
                  f" {t['reaction_s']:>9.2f}s")
        print(f"{'reaction, worst of ' + str(len(times)):<64} {max(times):>9.2f}s")
        print(f"{'reaction, median':<64} {statistics.median(times):>9.2f}s")
        if decided:
            print(f"{'  of which: load to decision, median':<64} {statistics.median(decided):>9.2f}s")
        print(f"{'baseline: PATCH 1 -> 2 to running (same run)':<64} "
              f"{reaction['baseline_manual_scale_s']:>9.2f}s")
        print(f"{'CPU sampling period (BERTH_METRICS_INTERVAL_S)':<64} {reaction['period_s']:>9.2f}s")
        summary.update(reaction_s=round(max(times), 2), reaction_median_s=round(statistics.median(times), 2),
                       baseline_manual_scale_s=round(reaction["baseline_manual_scale_s"], 2))
    print(f"{'pure decide(), ' + str(decide['services']) + ' services x ' + str(decide['replicas']):<64}"
          f" {decide['pure_decide_s']:>9.3f}s")
    print(f"{'autoscale_all() on SQLite, queries + commit, first round':<64} {decide['autoscale_all_s']:>9.3f}s")
    print(f"{'autoscale_all() again (all held)':<64} {decide['autoscale_all_again_s']:>9.3f}s")
    print(f"{'baseline: lazy per-service reads + decide, no writes (same run)':<64} "
          f"{decide['naive_read_and_decide_s']:>9.3f}s")
    print(f"  decisions {decide['directions']}, deploys enqueued {decide['deploys_enqueued']}")
    summary.update(pure_decide_1000_s=round(decide["pure_decide_s"], 4),
                   autoscale_all_again_s=round(decide["autoscale_all_again_s"], 3),
                   naive_read_and_decide_s=round(decide["naive_read_and_decide_s"], 3))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
