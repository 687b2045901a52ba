"""Host probe round: does one liveness round over 500 hosts finish within its period?

Starts a test bed with real Docker engines on 127.0.0.1, registers N hosts in a fresh SQLite
database and runs the beat task's exact call, `services.probe_hosts(None, ...)` inside
`db.unit_of_work()`, K times, timing each round and checking what it recorded. The hosts are:

    ~90%  real engines: the bed's 3 dockerd, shared (each engine answers ~N*0.3 probes per round,
          concurrently: harder for the engines than one probe per engine would be)
    ~5%   closed loopback ports: connection refused, an instant failure
    ~5%   black holes: loopback listeners of this script that accept and never answer, so each
          of those probes runs into the probe timeout (Config.probe_timeout_s)

A naive sequential probe (services.probe one host after another, same client and timeout) runs
on a sample of the same hosts and is extrapolated to N. Prints a table, and as the last line one
JSON object.

    .venv/bin/python benchmarks/probe.py [--hosts 500] [--rounds 3] [--baseline-sample 50]
"""
from __future__ import annotations

import os
import sys

# Python puts this script's folder first on sys.path; other benchmark files there (token.py, ...)
# would shadow standard modules of the same name. Drop it before importing anything else.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import select  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "scripts"))
sys.path.insert(0, str(REPOSITORY / "platform"))

from sqlalchemy import event, func, select as sql_select  # noqa: E402

from berth import db, migrate  # noqa: E402
from berth.clock import utcnow  # noqa: E402
from berth.config import Config  # noqa: E402
from berth.hosts import services  # noqa: E402
from berth.models import Cluster, Event, Host, Pool  # noqa: E402
from testbed import LOCALHOST, TestBed, free_port  # noqa: E402

SEED = 20261123
REAL, REFUSED, BLACKHOLE = "real", "refused", "blackhole"
CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)
                   if f.default is not dataclasses.MISSING}


class Deadline(Exception):
    pass


class BlackHoles:
    """Loopback listeners that accept connections and never send a byte.

    One thread accepts (select with a short timeout, a stop flag) and holds the sockets, so
    probes see an open connection and wait for an answer until their read timeout. At most
    `max_held` connections are held; beyond that they stay in the kernel's backlog, which to
    the client looks the same (the handshake completed, nothing comes back).
    """

    def __init__(self, count: int, max_held: int = 20000):
        self.listeners: list[socket.socket] = []
        self.held: list[socket.socket] = []
        self.max_held = max_held
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for _ in range(count):
            sock = socket.socket()
            self.listeners.append(sock)
            sock.bind((LOCALHOST, 0))
            sock.listen(256)
            sock.setblocking(False)

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.listeners]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept, name="blackholes", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(self.listeners, [], [], 0.2)
            for sock in ready:
                if len(self.held) >= self.max_held:
                    continue
                try:
                    conn, _ = sock.accept()
                except (BlockingIOError, OSError):
                    continue
                self.held.append(conn)  # never read, never answered, closed at stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sock in self.held + self.listeners:
            try:
                sock.close()
            except OSError:
                pass
        self.held.clear()


class Recorder:
    """Times services.probe and services.record_probe while probe_hosts runs (wrappers installed
    on the module, which probe_hosts looks its helpers up in at call time)."""

    def __init__(self):
        self.real_probe, self.real_record = services.probe, services.record_probe
        self.reset()

    def reset(self):
        self.probes: list[tuple[float, float, int, bool]] = []  # start, end, host id, answered
        self.records: list[tuple[float, float]] = []

    def install(self):
        def probe(host_id, endpoint, connect):
            began = time.perf_counter()
            result = self.real_probe(host_id, endpoint, connect)
            self.probes.append((began, time.perf_counter(), host_id, result.info is not None))
            return result

        def record_probe(result, failures_for_down):
            began = time.perf_counter()
            self.real_record(result, failures_for_down)
            self.records.append((began, time.perf_counter()))

        services.probe, services.record_probe = probe, record_probe

    def uninstall(self):
        services.probe, services.record_probe = self.real_probe, self.real_record


def percentile(values, share):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def machine_facts() -> dict:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import docker
    import requests
    import sqlalchemy
    import urllib3
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": model, "cpus": os.cpu_count(), "memory_gib": round(mem_gib, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "docker_sdk": docker.__version__, "requests": requests.__version__,
            "urllib3": urllib3.__version__, "sqlalchemy": sqlalchemy.__version__,
            "sqlite": sqlite3.sqlite_version}


def build_hosts(count: int, engine_urls: list[str], refused_ports: list[int],
                hole_ports: list[int], share_down: float) -> list[tuple[str, str, str]]:
    """(name, endpoint, category) for every host, categories shuffled over the list."""
    per_kind = int(round(count * share_down / 2))
    kinds = [REFUSED] * per_kind + [BLACKHOLE] * per_kind
    kinds += [REAL] * (count - len(kinds))
    random.Random(SEED).shuffle(kinds)
    hosts, counters = [], {REAL: 0, REFUSED: 0, BLACKHOLE: 0}
    for number, kind in enumerate(kinds, start=1):
        index = counters[kind]
        counters[kind] += 1
        if kind == REAL:
            url = engine_urls[index % len(engine_urls)]
        elif kind == REFUSED:
            url = f"tcp://{LOCALHOST}:{refused_ports[index % len(refused_ports)]}"
        else:
            url = f"tcp://{LOCALHOST}:{hole_ports[index % len(hole_ports)]}"
        hosts.append((f"bench-{number:04d}", url, kind))
    return hosts


def insert_hosts(hosts) -> tuple[dict[int, str], dict[int, str]]:
    """Insert the Host rows (5 pools of one cluster); returns {id: category}, {id: endpoint}."""
    with db.unit_of_work() as session:
        cluster = Cluster(name="bench")
        pools = [Pool(cluster=cluster, name=f"p{i}") for i in range(5)]
        session.add(cluster)
        rows = []
        for number, (name, url, kind) in enumerate(hosts):
            row = Host(name=name, endpoint=url, pool=pools[number % len(pools)], idc="bench",
                       labels={"kind": kind}, admin_state="active", address=LOCALHOST,
                       port_range_start=20000, port_range_end=29999)
            rows.append((row, kind))
            session.add(row)
        session.flush()
        categories = {row.id: kind for row, kind in rows}
        urls = {row.id: row.endpoint for row, _ in rows}
    return categories, urls


def check_round(number: int, categories: dict[int, str], event_floor: int, started_at,
                failures_for_down: int) -> dict:
    with db.unit_of_work() as session:
        states = dict(session.execute(sql_select(Host.id, Host.liveness)).all())
        beats = set(session.scalars(sql_select(Host.id).where(Host.last_heartbeat_at >= started_at)))
        kinds = dict(session.execute(
            sql_select(Event.kind, func.count()).where(Event.id > event_floor).group_by(Event.kind)
        ).all())
        event_top = session.scalar(sql_select(func.max(Event.id))) or 0
    counts = {"up": 0, "down": 0, "unknown": 0}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    problems = []
    n_real = sum(k == REAL for k in categories.values())
    n_bad = len(categories) - n_real
    for host_id, kind in categories.items():
        state = states.get(host_id)
        if kind == REAL:
            expected = "up"
        else:
            expected = "down" if number >= failures_for_down else "unknown"
        if state != expected:
            problems.append(f"host {host_id} ({kind}) is {state}, expected {expected}")
        if (kind == REAL) != (host_id in beats):
            problems.append(f"host {host_id} ({kind}) heartbeat {'missing' if kind == REAL else 'set'}")
    expected_events = {}
    if number == 1:
        expected_events["host.up"] = n_real
    if number == failures_for_down:
        expected_events["host.down"] = n_bad
    if kinds != expected_events:
        problems.append(f"events {kinds}, expected {expected_events}")
    return {"counts": counts, "events": kinds, "heartbeats": len(beats), "problems": problems,
            "event_top": event_top}


def sequential_baseline(targets: list[tuple[int, str, str]], timeout_s: float,
                        budget_s: float) -> list[tuple[str, float, bool]]:
    """services.probe on each (host id, url, kind) one after another; (kind, seconds, answered)."""
    from berth.engine import Endpoint

    out = []
    began = time.monotonic()
    for host_id, url, kind in targets:
        if time.monotonic() - began > budget_s:
            break
        t0 = time.perf_counter()
        result = services.probe(host_id, Endpoint(url=url, timeout_s=timeout_s),
                                services.default_connect)
        out.append((kind, time.perf_counter() - t0, result.info is not None))
    return out


def client_breakdown(url: str, timeout_s: float, count: int) -> dict:
    """Median ms of one probe's steps against a real engine: new client, ping, info, close."""
    from berth.engine import Endpoint
    from berth.engine.sdk import DockerEngine

    steps = {"client": [], "ping": [], "info": [], "close": []}
    for _ in range(count):
        t0 = time.perf_counter()
        engine = DockerEngine(Endpoint(url=url, timeout_s=timeout_s))
        t1 = time.perf_counter()
        engine.ping()
        t2 = time.perf_counter()
        engine.info()
        t3 = time.perf_counter()
        engine.close()
        t4 = time.perf_counter()
        for name, value in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            steps[name].append(value * 1000)
    return {name: round(statistics.median(values), 2) for name, values in steps.items() if values}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", type=int, default=3)
    parser.add_argument("--share-down", type=float, default=0.10,
                        help="share of hosts that fail (half refused, half black holes)")
    parser.add_argument("--baseline-sample", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=CONFIG_DEFAULTS["probe_timeout_s"],
                        help="probe timeout, s (default Config.probe_timeout_s)")
    parser.add_argument("--period", type=float, default=CONFIG_DEFAULTS["probe_interval_s"],
                        help="probe period, s (default Config.probe_interval_s)")
    parser.add_argument("--failures-for-down", type=int,
                        default=CONFIG_DEFAULTS["probe_failures_for_down"])
    parser.add_argument("--max-parallel", type=int, default=None,
                        help="pass max_parallel to probe_hosts (default: its own default)")
    parser.add_argument("--max-seconds", type=int, default=900,
                        help="hard bound on the whole run (SIGALRM), s")
    args = parser.parse_args()
    if args.rounds < args.failures_for_down:
        parser.error("--rounds must reach --failures-for-down to see hosts go down")

    def on_alarm(signum, frame):
        raise Deadline(f"the benchmark exceeded --max-seconds {args.max_seconds}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.max_seconds)

    command = shlex.join([".venv/bin/python", "benchmarks/probe.py", *sys.argv[1:]])
    facts = machine_facts()
    bed = holes = recorder = None
    workdir = tempfile.TemporaryDirectory(prefix="berth-probe-bench-")
    try:
        began = time.monotonic()
        bed = TestBed(engines=args.engines, registries=(), postgres=False, redis=False,
                      image=False, timeout=60)
        bed.start()
        bed_s = time.monotonic() - began
        engine_urls = [e["url"] for e in bed.state["engines"]]

        n_down_each = int(round(args.hosts * args.share_down / 2))
        holes = BlackHoles(max(1, n_down_each))
        holes.start()
        refused_ports = [free_port() for _ in range(max(1, n_down_each))]
        hosts = build_hosts(args.hosts, engine_urls, refused_ports, holes.ports, args.share_down)

        url = f"sqlite:///{workdir.name}/berth.sqlite"
        migrate.upgrade(url)
        db.configure(url)
        categories, urls = insert_hosts(hosts)
        by_kind = {k: sum(v == k for v in categories.values()) for k in (REAL, REFUSED, BLACKHOLE)}
        per_engine = {u: sum(1 for _, h_url, k in hosts if k == REAL and h_url == u)
                      for u in engine_urls}

        print(f"# host probe round: {args.hosts} hosts, {args.rounds} rounds, period "
              f"{args.period:g} s, probe timeout {args.timeout:g} s, failures_for_down "
              f"{args.failures_for_down}")
        print(f"command: {command}")
        print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
        print(f"test bed: {args.engines} dockerd up in {bed_s:.1f} s: {', '.join(engine_urls)}")
        print(f"hosts: {by_kind[REAL]} real (sharing {args.engines} engines: "
              + ", ".join(str(n) for n in per_engine.values())
              + " host rows each, so each engine answers that many probes per round, concurrently "
              "- harder than one probe per engine; rows inserted directly, add_host would refuse "
              "a second row for one engine), "
              f"{by_kind[REFUSED]} closed ports (refused), {by_kind[BLACKHOLE]} black holes "
              f"(accept, never answer: each probe waits the {args.timeout:g} s timeout)")

        breakdown = client_breakdown(engine_urls[0], args.timeout, 20)
        print("one real probe, sequential, median ms of 20: "
              + ", ".join(f"{k} {v}" for k, v in breakdown.items()))

        statements = {"n": 0}

        def count_statement(conn, cursor, statement, parameters, context, executemany):
            statements["n"] += 1

        event.listen(db.engine(), "before_cursor_execute", count_statement)
        recorder = Recorder()
        recorder.install()
        kwargs = {} if args.max_parallel is None else {"max_parallel": args.max_parallel}
        rounds, event_floor, failures = [], 0, []
        for number in range(1, args.rounds + 1):
            recorder.reset()
            started_at = utcnow()
            statements["n"] = 0
            t0 = time.perf_counter()
            with db.unit_of_work():
                results = services.probe_hosts(None, failures_for_down=args.failures_for_down,
                                               timeout_s=args.timeout, **kwargs)
                t_returned = time.perf_counter()
            t_end = time.perf_counter()
            total = t_end - t0
            sql_count = statements["n"]
            row = {"round": number, "s": total, "probed": len(results),
                   "failed": sum(r.info is None for r in results), "sql": sql_count}
            if recorder.probes:
                first = min(p[0] for p in recorder.probes)
                last = max(p[1] for p in recorder.probes)
                row["load_s"] = first - t0
                row["network_s"] = last - first
                row["record_s"] = t_returned - last
                durations = {k: [p[1] - p[0] for p in recorder.probes if categories[p[2]] == k]
                             for k in (REAL, REFUSED, BLACKHOLE)}
                ends = {k: [p[1] - first for p in recorder.probes if categories[p[2]] == k]
                        for k in (REAL, REFUSED, BLACKHOLE)}
                starts = [p[0] - first for p in recorder.probes if categories[p[2]] == BLACKHOLE]
                row["real_done_s"] = max(ends[REAL]) if ends[REAL] else float("nan")
                row["hole_last_start_s"] = max(starts) if starts else float("nan")
                row["probe_ms"] = {k: (round(percentile(v, .5) * 1000, 1),
                                       round(percentile(v, .99) * 1000, 1), round(max(v) * 1000, 1))
                                   for k, v in durations.items() if v}
            row["commit_s"] = t_end - t_returned
            check = check_round(number, categories, event_floor, started_at, args.failures_for_down)
            event_floor = check["event_top"]
            row.update(counts=check["counts"], events=check["events"], problems=check["problems"])
            failures += [f"round {number}: {p}" for p in check["problems"][:5]]
            rounds.append(row)
        recorder.uninstall()

        # Baseline: the same probes one after another, on a sample, extrapolated to all hosts.
        # A stratified sample: each category in its share of the hosts (largest remainder).
        quotas = {k: args.baseline_sample * n / args.hosts for k, n in by_kind.items()}
        counts = {k: int(q) for k, q in quotas.items()}
        for k in sorted(quotas, key=lambda k: quotas[k] - counts[k], reverse=True):
            if sum(counts.values()) >= min(args.baseline_sample, args.hosts):
                break
            counts[k] += 1
        sample = [(h, urls[h], k) for k in (REAL, REFUSED, BLACKHOLE)
                  for h in sorted(h for h in categories if categories[h] == k)[:counts[k]]]
        random.Random(SEED).shuffle(sample)
        baseline_began = time.perf_counter()
        measured = sequential_baseline(sample, args.timeout, budget_s=300)
        baseline_s = time.perf_counter() - baseline_began
        sample_kinds = {k: [d for kind, d, _ in measured if kind == k]
                        for k in (REAL, REFUSED, BLACKHOLE)}
        linear = baseline_s / len(measured) * args.hosts
        by_category = sum(statistics.mean(v) * by_kind[k] for k, v in sample_kinds.items() if v)

        # Table.
        print()
        print("| round | s | probes/s | load s | network s | record s | commit s | SQL stmts | up |"
              " down | unknown | events | real probe ms p50/p99/max | black hole ms p50 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rounds:
            real = r.get("probe_ms", {}).get(REAL, ("-", "-", "-"))
            hole = r.get("probe_ms", {}).get(BLACKHOLE, ("-",))
            events = ", ".join(f"{k} {v}" for k, v in sorted(r["events"].items())) or "none"
            print(f"| {r['round']} | {r['s']:.2f} | {r['probed'] / r['s']:.0f} | "
                  f"{r.get('load_s', float('nan')):.2f} | {r.get('network_s', float('nan')):.2f} | "
                  f"{r.get('record_s', float('nan')):.2f} | {r['commit_s']:.2f} | {r['sql']} | "
                  f"{r['counts']['up']} | {r['counts']['down']} | {r['counts']['unknown']} | "
                  f"{events} | {real[0]}/{real[1]}/{real[2]} | {hole[0]} |")
        print()
        for r in rounds:
            if "real_done_s" in r:
                print(f"round {r['round']}: last real probe done at {r['real_done_s']:.2f} s, "
                      f"last black-hole probe started at {r['hole_last_start_s']:.2f} s "
                      f"(so done ~{r['hole_last_start_s'] + args.timeout:.2f} s) into the "
                      f"network phase of {r['network_s']:.2f} s")
        sample_desc = ", ".join(f"{len(v)} {k}" for k, v in sample_kinds.items())
        print(f"| sequential baseline | {by_category:.1f} (est.) | {args.hosts / by_category:.1f} | "
              f"| | | | | | | | | {statistics.median(sample_kinds[REAL]) * 1000:.1f} (median) | "
              f"{statistics.median(sample_kinds[BLACKHOLE]) * 1000 if sample_kinds[BLACKHOLE] else float('nan'):.0f} |")
        print()
        print(f"baseline: services.probe one host after another on a sample of {len(measured)} "
              f"hosts ({sample_desc}, stratified) took {baseline_s:.2f} s; extrapolated "
              f"linearly to {args.hosts} hosts: {linear:.1f} s (x{args.hosts / len(measured):g}); "
              f"per category (mean x count of each): {by_category:.1f} s. Not measured on all "
              f"{args.hosts}.")
        print("columns: load = SELECT of the hosts before the first probe; network = first probe "
              "start to last probe end (thread pool); record = record_probe for every result "
              "(liveness, hardware, heartbeat, events, autoflush); commit = unit_of_work commit; SQL "
              "stmts = statements sent to SQLite in the round (an executemany counts once).")
        if failures:
            print("CHECK FAILED:\n  " + "\n  ".join(failures))
        else:
            print(f"checks: after round {args.failures_for_down} and later: {by_kind[REAL]} up, "
                  f"{by_kind[REFUSED] + by_kind[BLACKHOLE]} down as expected; heartbeats on the "
                  "real hosts only; one host.up per real host in round 1, one host.down per "
                  f"failing host in round {args.failures_for_down}, no events otherwise: OK")

        seconds = [r["s"] for r in rounds]
        summary = {
            "hosts": args.hosts,
            "rounds": len(rounds),
            "round_s": [round(s, 3) for s in seconds],
            "round_s_p50": round(statistics.median(seconds), 3),
            "round_s_max": round(max(seconds), 3),
            "period_s": args.period,
            "within_period": max(seconds) <= args.period,
            "probe_timeout_s": args.timeout,
            "baseline_sequential_s_estimated": round(by_category, 1),
            "baseline_sequential_s_plain_linear": round(linear, 1),
            "baseline_sample": len(measured),
            "sql_statements_per_round": [r["sql"] for r in rounds],
            "checks_ok": not failures,
        }
        print(json.dumps(summary))
        return 0 if not failures else 1
    finally:
        signal.alarm(0)
        if recorder is not None:
            recorder.uninstall()
        if holes is not None:
            holes.stop()
        if bed is not None:
            bed.stop()
        try:
            db.session.remove()
            db.engine().dispose()
        except RuntimeError:
            pass
        workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
