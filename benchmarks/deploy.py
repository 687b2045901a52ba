"""Deploy and scale: how much slower than raw `docker run -d` is a Berth scale-up?

Starts the test bed (scripts/testbed: 3 dockerd and the primary registry, the busybox image
built on e1 and pushed as library/busybox:1) and, through its harness (testbed.berth), a real
Berth on the embedded defaults in a fresh instance, guarding that registry with its token
service (web under gunicorn, a Celery worker and beat); registers the 3 engines as hosts
(label engine=eN) and waits until they are up.
Then, on the same run:

    raw           30 sequential `docker run -d --network none IMAGE sleep 3600` on e1 through
                  the docker CLI (image already on e1), timed from the first command to the 30th
                  returning; then one `docker rm -f` of them
    berth 1 eng.  an application with one service constrained to `engine==e1` (no port, no
                  healthcheck, `sleep 3600`, 0.01 CPU, 8 MiB), PATCH replicas 0 -> 30, timed
                  from the PATCH until 30 of its containers run on e1 (docker polled by label),
                  then scaled to 0 and waited for
    (raw and berth 1 eng. alternate for --rounds rounds; the medians are reported, so both
    see the same load on a shared machine)
    berth 3 eng.  another application without the constraint, 0 -> 90 across the 3 engines
    raw, limited  30 sequential raw runs with the service's own limits (--cpus 0.01 --memory
                  8m): what Berth's containers really cost the engine

Prints a table, the command, the machine, engine-side timings (docker events: first create,
last start) and what the worker's deploy passes did, and as the last line one JSON object.

    .venv/bin/python benchmarks/deploy.py [--rounds 3] [--replicas 30] [--spread 90]
                                          [--limited-raw 30] [--poll 0.1] [--keep-logs DIR]

Everything it starts (bed, web, worker, beat, instance folder) is stopped and removed in
`finally`, also on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import os
import sys

# Python puts this script's folder first on sys.path; other benchmark files there (token.py, ...)
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
import urllib.parse  # noqa: E402
from pathlib import Path  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "scripts"))
sys.path.insert(0, str(REPOSITORY / "platform"))
sys.path.insert(0, str(REPOSITORY))

from berth import db  # noqa: E402
from berth.engine import LABEL_APPLICATION, LABEL_SERVICE  # noqa: E402
from testbed import LOCALHOST, TestBed  # noqa: E402
from testbed.berth import Berth  # noqa: E402
from tests.support import wait_for  # noqa: E402

ADMIN_PASSWORD = "bench-admin"
MiB = 2**20
RECONCILE_INTERVAL_S = "2"
PROBE_INTERVAL_S = "1"
LIMITS = ("--cpus", "0.01", "--memory", "8m")  # what Berth gives the benchmark's service
SETTINGS = dict(BERTH_TOKEN_LIFETIME_S="60", BERTH_PROBE_INTERVAL_S=PROBE_INTERVAL_S,
                BERTH_PROBE_TIMEOUT_S="2", BERTH_PROBE_FAILURES_FOR_DOWN="2",
                BERTH_RECONCILE_INTERVAL_S=RECONCILE_INTERVAL_S)


class Interrupted(BaseException):
    pass


def _on_sigterm(signum, _frame):
    raise Interrupted(f"signal {signum}")


# -- the engines, read directly --------------------------------------------------------------

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


def count(engine: dict, app: str, service: str, running_only: bool = True) -> int:
    filters = {"label": [f"{LABEL_APPLICATION}={app}", f"{LABEL_SERVICE}={service}"]}
    if running_only:
        filters["status"] = ["running"]
    query = urllib.parse.urlencode({"all": "1", "filters": json.dumps(filters)})
    return len(engine_get(engine, f"/v1.41/containers/json?{query}"))


def engine_events(engine: dict, since: float, until: float, labels: list[str] | None = None,
                  ids: list[str] | None = None) -> list[tuple[str, float]]:
    """(action, unix time) of the container events on an engine in [since, until]."""
    filters = {"type": ["container"], "event": ["create", "start", "destroy"]}
    if labels:
        filters["label"] = labels
    query = urllib.parse.urlencode({"since": f"{since:.6f}", "until": f"{until:.6f}",
                                    "filters": json.dumps(filters)})
    conn = http.client.HTTPConnection(LOCALHOST, engine["port"], timeout=30)
    try:
        conn.request("GET", f"/v1.41/events?{query}")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    decoder, found, index = json.JSONDecoder(), [], 0
    while index < len(body):
        if body[index].isspace():
            index += 1
            continue
        event, index = decoder.raw_decode(body, index)
        if ids is None or event.get("id") in ids:
            found.append((event.get("Action") or event.get("status"), event["timeNano"] / 1e9))
    return found


def event_span(events: list[tuple[str, float]], since: float) -> dict:
    """When the first create and the last start happened, in seconds after `since`."""
    creates = [t for action, t in events if action == "create"]
    starts = [t for action, t in events if action == "start"]
    if not creates or not starts:
        return {}
    return {"first_create_s": min(creates) - since, "last_start_s": max(starts) - since,
            "creates": len(creates), "starts": len(starts)}


def docker_cli(engine: dict, *args: str, config_dir: str, timeout: float = 60) -> str:
    env = dict(os.environ, DOCKER_HOST=engine["url"], DOCKER_CONFIG=config_dir)
    done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} on {engine['name']}: {done.stderr.strip()}")
    return done.stdout.strip()


# -- the scenarios ----------------------------------------------------------------------------

def raw_baseline(engine: dict, image: str, n: int, config_dir: str, limits: tuple[str, ...] = ()) -> dict:
    """n sequential `docker run -d --network none [limits] IMAGE sleep 3600`, then one rm -f."""
    ids, each = [], []
    removed_s = engine_span = None
    try:
        wall = time.time()
        began = time.monotonic()
        for _ in range(n):
            t = time.monotonic()
            ids.append(docker_cli(engine, "run", "-d", "--network", "none", *limits, image, "sleep",
                                  "3600", config_dir=config_dir))
            each.append(time.monotonic() - t)
        total = time.monotonic() - began
        running = len(engine_get(engine, "/v1.41/containers/json?" + urllib.parse.urlencode(
            {"filters": json.dumps({"id": ids, "status": ["running"]})})))
        engine_span = event_span(engine_events(engine, wall, time.time(), ids=set(ids)), wall)
    finally:
        if ids:
            t = time.monotonic()
            docker_cli(engine, "rm", "-f", *ids, config_dir=config_dir, timeout=120)
            removed_s = time.monotonic() - t
    if running != n:
        raise RuntimeError(f"raw: {running} of {n} containers running")
    return {"s": total, "per_container_median_s": statistics.median(each),
            "per_container_max_s": max(each), "rm_s": removed_s, "engine": engine_span}


DEPLOY_DONE = re.compile(r"Task berth\.workloads\.tasks\.deploy_application\[[^\]]+\] succeeded in "
                         r"([0-9.]+)s: (\{.*\})")


def passes_in(log: str) -> list[dict]:
    """The worker's deploy passes in a log excerpt: application, duration, what each did."""
    found = []
    for match in DEPLOY_DONE.finditer(log):
        text = match.group(2)
        numbers = {key: int(value) for key, value in
                   re.findall(r"'(application|created|removed)': (\d+)", text)}
        found.append({"s": float(match.group(1)), "busy": "'busy'" in text,
                      "app": numbers.get("application"), "created": numbers.get("created", 0),
                      "removed": numbers.get("removed", 0)})
    return found


def scale(berth: Berth, engines: list[dict], app: str, service: str, replicas: int,
          timeout_s: float, poll_s: float) -> dict:
    """PATCH replicas, then poll the engines until exactly that many run (or, for 0, none exist)."""
    log_offset = berth.log_size("worker")
    wall = time.time()
    began = time.monotonic()
    response = berth.api("PATCH", f"/api/v1/applications/{app}/services/{service}",
                         json={"replicas": replicas})
    accepted = time.monotonic() - began
    if response.status_code != 200:
        raise RuntimeError(f"PATCH {app}/{service} -> {response.status_code}: {response.text[:300]}")
    first = None
    deadline = began + timeout_s
    while True:
        per_engine = {e["name"]: count(e, app, service, running_only=replicas > 0) for e in engines}
        total = sum(per_engine.values())
        now = time.monotonic()
        if replicas and total and first is None:
            first = now - began
        if total == replicas:
            break
        if now > deadline:
            raise TimeoutError(f"{app}/{service}: {total} of {replicas} after {timeout_s} s "
                               f"({per_engine})")
        time.sleep(poll_s)
    elapsed = time.monotonic() - began
    time.sleep(0.5)  # let the worker log the pass that got there
    passes = passes_in(berth.log_since("worker", log_offset))
    labels = [f"{LABEL_APPLICATION}={app}", f"{LABEL_SERVICE}={service}"]
    until = wall + elapsed + 0.2
    spans = {e["name"]: event_span(engine_events(e, wall, until, labels), wall) for e in engines}
    return {"s": elapsed, "patch_s": accepted, "first_running_s": first, "per_engine": per_engine,
            "passes": passes, "engine": {k: v for k, v in spans.items() if v}}


def define(berth: Berth, app: str, service: str, image: str, constraints: list[str]) -> None:
    spec = {"name": app, "services": [{
        "name": service, "image": image, "replicas": 0, "command": ["sleep", "3600"],
        "cpus": 0.01, "memory": 8 * MiB, "constraints": constraints}]}
    response = berth.api("POST", "/api/v1/applications", json=spec)
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/v1/applications {app} -> {response.status_code}: "
                           f"{response.text[:300]}")


def register_hosts(berth: Berth, bed: TestBed) -> None:
    from berth.hosts import services

    with db.unit_of_work():
        for engine in bed.state["engines"]:
            services.add_host(f"bench-{engine['name']}", engine["url"], cluster="bench", pool="p1",
                              labels={"engine": engine["name"]},
                              port_range=tuple(engine["port_range"]))


def hosts_up(expected: int) -> bool:
    from sqlalchemy import select

    from berth.models import Host

    db.session.rollback()
    hosts = list(db.session.scalars(select(Host)))
    up = [h for h in hosts if h.liveness == "up" and h.cpus and h.memory]
    db.session.rollback()
    return len(up) == expected


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    docker_version = subprocess.run(["docker", "--version"], capture_output=True, text=True).stdout
    return {"cpu": cpu, "nproc": os.cpu_count(), "loadavg_start": os.getloadavg(),
            "kernel": platform.release(), "python": platform.python_version(),
            "docker_cli": docker_version.strip()}


def fmt_span(span: dict | None) -> str:
    if not span:
        return "no events"
    return (f"first create at {span['first_create_s']:.2f} s, last start at {span['last_start_s']:.2f} s "
            f"({span['creates']} creates, {span['starts']} starts)")


def fmt_passes(passes: list[dict]) -> str:
    if not passes:
        return "none logged in the window"
    busy = sum(p["busy"] for p in passes)
    done = [f"{p['s']:.2f}s app {p['app']} +{p['created']}" + (f" -{p['removed']}" if p["removed"] else "")
            for p in passes if not p["busy"]]
    return ", ".join(done) + (f"; {busy} found the lease taken (retried 1 s later)" if busy else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=30, help="one-engine scale-up (and raw runs)")
    parser.add_argument("--spread", type=int, default=90, help="three-engine scale-up")
    parser.add_argument("--rounds", type=int, default=3,
                        help="raw runs and Berth one-engine scale-ups, in turns; medians reported")
    parser.add_argument("--limited-raw", type=int, default=30, metavar="N",
                        help="also N sequential raw runs with the service's limits (--cpus 0.01 "
                             "--memory 8m), 0 to skip")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between docker polls")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on each wait, s")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy Berth's logs (web, worker, beat) to DIR")
    args = parser.parse_args(argv)
    command = ".venv/bin/python benchmarks/deploy.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C is a KeyboardInterrupt even when started from a shell that ignores SIGINT (`&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    facts = machine()
    work = Path(tempfile.mkdtemp(prefix="berth-deploy-"))
    config_dir = str(work / "docker-cli")
    os.makedirs(config_dir)
    (work / "logs").mkdir()
    berth = Berth(work / "instance", work / "logs", admin_password=ADMIN_PASSWORD, settings=SETTINGS)
    bed = None
    try:
        berth.prepare()
        bed = TestBed(engines=3, registries=("primary",), postgres=False, redis=False)
        began = time.monotonic()
        bed.start()  # the image is pushed before Berth guards the registry
        berth.guard_registry(bed)
        berth.start(workers=1)
        engines = bed.state["engines"]
        e1 = engines[0]
        image = bed.image
        for engine in engines[1:]:  # the image on every engine, as on e1: no first pull timed
            bed.load_image(engine["name"], image, {"username": "admin", "password": ADMIN_PASSWORD})
        register_hosts(berth, bed)
        wait_for(lambda: hosts_up(len(engines)), 60, "the 3 hosts to be up")
        setup_s = time.monotonic() - began
        print(f"environment up in {setup_s:.1f} s: Berth {berth.url}, engines "
              + ", ".join(f"{e['name']}={e['url']}" for e in engines) + f", image {image}", flush=True)

        define(berth, "bench1", "sleeper", image, ["engine==e1"])
        define(berth, "bench3", "sleeper", image, [])
        time.sleep(3)  # the definitions' own (empty) deploys are done
        # Raw and Berth on e1 in turns, so that both see the same moment of a shared machine's load.
        raws, ones, downs = [], [], []
        for number in range(1, args.rounds + 1):
            raws.append(raw_baseline(e1, image, args.replicas, config_dir))
            ones.append(scale(berth, [e1], "bench1", "sleeper", args.replicas, args.timeout, args.poll))
            downs.append(scale(berth, engines, "bench1", "sleeper", 0, args.timeout, args.poll))
            print(f"round {number}: raw {args.replicas} x docker run -d {raws[-1]['s']:.2f} s, "
                  f"Berth e1 0 -> {args.replicas} {ones[-1]['s']:.2f} s, ratio "
                  f"{ones[-1]['s'] / raws[-1]['s']:.2f} (load {os.getloadavg()[0]:.1f})", flush=True)
        three = scale(berth, engines, "bench3", "sleeper", args.spread, args.timeout, args.poll)
        print(f"Berth, 3 engines: 0 -> {args.spread} in {three['s']:.2f} s", flush=True)
        three_down = scale(berth, engines, "bench3", "sleeper", 0, args.timeout, args.poll)
        limited = None
        if args.limited_raw:
            limited = raw_baseline(e1, image, args.limited_raw, config_dir, LIMITS)
            print(f"raw with limits: {args.limited_raw} x docker run -d {' '.join(LIMITS)} in "
                  f"{limited['s']:.2f} s", flush=True)

        raw_s = statistics.median(r["s"] for r in raws)
        berth_s = statistics.median(o["s"] for o in ones)
        raw_each = raw_s / args.replicas
        rows = [(f"raw `docker run -d`, e1, sequential (median of {args.rounds})", args.replicas, raw_s),
                (f"Berth scale 0 -> N, e1 (engine==e1) (median of {args.rounds})", args.replicas, berth_s),
                ("Berth scale 0 -> N, e1+e2+e3", args.spread, three["s"])]
        if limited:
            rows.append((f"raw `docker run -d {' '.join(LIMITS)}`, e1, sequential", args.limited_raw,
                         limited["s"]))
        print()
        print(f"command: {command}")
        print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
        print(f"settings: BERTH_RECONCILE_INTERVAL_S={RECONCILE_INTERVAL_S}, "
              f"BERTH_PROBE_INTERVAL_S={PROBE_INTERVAL_S}, worker --concurrency 2, embedded "
              f"SQLite database and broker; docker polled every {args.poll} s; load at the end "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print()
        print("| scenario | containers | seconds | containers/s | ratio to raw |")
        print("|---|---|---|---|---|")
        for name, n, seconds in rows:  # ratio: against n x the raw median's time per container
            print(f"| {name} | {n} | {seconds:.2f} | {n / seconds:.2f} | {seconds / (n * raw_each):.2f} |")
        print()
        print("rounds (raw s / Berth e1 s / ratio): " + ", ".join(
            f"{r['s']:.2f}/{o['s']:.2f}/{o['s'] / r['s']:.2f}" for r, o in zip(raws, ones)))
        print(f"raw: per container median {statistics.median(r['per_container_median_s'] for r in raws):.3f} s; "
              f"engine events of round 1: {fmt_span(raws[0]['engine'])}; removing the "
              f"{args.replicas} with one `docker rm -f`: "
              + "/".join(f"{r['rm_s']:.2f}" for r in raws) + " s")
        if limited:
            per = limited["s"] / args.limited_raw
            print(f"raw with limits: per container median {limited['per_container_median_s']:.3f} s; "
                  f"Berth e1 against {args.replicas} of them: {berth_s / (per * args.replicas):.2f}")
        results = [(f"e1 up, round {i}", o) for i, o in enumerate(ones, 1)]
        results += [(f"e1 down, round {i}", d) for i, d in enumerate(downs, 1)]
        results += [("3 engines up", three), ("3 engines down", three_down)]
        for label, result in results:
            first = f", first running at {result['first_running_s']:.2f} s" if result["first_running_s"] else ""
            print(f"{label}: {result['s']:.2f} s (PATCH answered in {result['patch_s']:.2f} s{first}); "
                  f"per engine {result['per_engine']}; deploy passes: {fmt_passes(result['passes'])}")
            for name, span in result["engine"].items():
                print(f"    {name} (engine events, from the PATCH): {fmt_span(span)}")
        summary = {
            "berth_s": round(berth_s, 3), "raw_s": round(raw_s, 3), "ratio": round(berth_s / raw_s, 3),
            "three_engines_s": round(three["s"], 3),
            "three_engines_ratio": round(three["s"] / (raw_each * args.spread), 3),
            "rounds": args.rounds, "berth_s_rounds": [round(o["s"], 3) for o in ones],
            "raw_s_rounds": [round(r["s"], 3) for r in raws],
            "ratio_rounds": [round(o["s"] / r["s"], 3) for r, o in zip(raws, ones)],
            "replicas": args.replicas, "spread": args.spread,
            "raw_per_container_median_s": round(statistics.median(
                r["per_container_median_s"] for r in raws), 3),
            "raw_limited_s": round(limited["s"], 3) if limited else None,
            "raw_limited_n": args.limited_raw,
            "ratio_to_limited": (round(berth_s / (limited["s"] / args.limited_raw * args.replicas), 3)
                                 if limited else None),
            "berth_first_running_s": [round(o["first_running_s"] or 0, 3) for o in ones],
            "scale_down_s": [round(d["s"], 3) for d in downs],
            "raw_rm_s": [round(r["rm_s"], 3) for r in raws],
            "three_engines_scale_down_s": round(three_down["s"], 3),
            "three_engines_per_engine": three["per_engine"],
            "nproc": facts["nproc"], "loadavg_start": [round(x, 2) for x in facts["loadavg_start"]],
        }
        print(json.dumps(summary))
        return 0
    finally:
        try:
            berth.stop_all()
        finally:
            if args.keep_logs:
                shutil.copytree(work / "logs", Path(args.keep_logs), dirs_exist_ok=True)
            if bed is not None:
                bed.stop()
            db.session.remove()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, Interrupted):
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
