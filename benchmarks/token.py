"""Registry token issuance through the real web server: how fast does Berth answer a docker
client's `GET /service/token`, warm and cold, next to the bare web stack (`/healthz`)?

Builds a fresh instance in a temp folder (embedded defaults: SQLite), runs `berth release`,
starts gunicorn exactly as the Procfile does (on a free 127.0.0.1 port), creates users, a
private project with a developer and a guest, a public project and a pull-only robot through
the /api/v1 API, then:

  cold      the first token request of each password credential (pays the scrypt hash);
  warm-up   every client session asks once per scenario, so each gunicorn worker a session
            talks to has the credentials in its verified-credentials cache (it is per process);
  measured  --requests token requests from --concurrency keep-alive sessions, a round-robin
            mix of four scenarios, every answer checked (200, a token, the expected grant);
  baseline  the same number of `GET /healthz` (one `SELECT 1`) from the same sessions.

Prints a table, the command line and the machine, and as its last line one JSON object.
Exits 1 if any request failed. gunicorn is stopped in a `finally`, on Ctrl-C too.

    .venv/bin/python benchmarks/token.py [--requests 2000] [--concurrency 4] [--max-seconds 60]
"""
# This file is named like the stdlib `token` module, which `inspect` and `dataclasses`
# import through `tokenize`: drop this folder from the path before importing anything else.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402

ROOT = Path(_HERE).parent
BIN = Path(sys.executable).parent
SERVICE = "berth-registry"
ADMIN_PASSWORD = "bench-admin-password-1"
REQUEST_TIMEOUT_S = 10.0
SLOW_WARMUP_MS = 50.0  # a warm-up answer slower than this paid a password hash
PRIVATE, PUBLIC, REPO = "shop", "library", "web"


@dataclass
class Scenario:
    name: str
    auth: tuple[str, str] | None
    repository: str
    actions: str  # as requested in the scope
    expect_subject: str
    expect_actions: list[str]
    path: str = "/service/token"

    @property
    def params(self) -> dict[str, str]:
        return {"service": SERVICE, "scope": f"repository:{self.repository}:{self.actions}"}


@dataclass
class Sample:
    scenario: str
    ms: float
    client: int = 0  # which client thread (keep-alive session)
    at_s: float = 0.0  # when it started, seconds into the phase


@dataclass
class Tally:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, scenario: str, ms: float, error: str | None, client: int = 0,
            at_s: float = 0.0) -> None:
        with self.lock:
            if error is None:
                self.samples.append(Sample(scenario, ms, client, at_s))
            else:
                self.errors.append(f"{scenario}: {error}")


# --- the server -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(instance: Path, metrics_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    for name in ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "SECRET_KEY",
                 "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY"):
        env.pop(name, None)  # the embedded defaults, nothing from the caller's shell
    env.update(BERTH_INSTANCE=str(instance), BERTH_ADMIN_PASSWORD=ADMIN_PASSWORD,
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def gunicorn_argv(bind: str, workers: int) -> list[str]:
    # The Procfile's `web` line, with BERTH_BIND and WEB_CONCURRENCY filled in.
    return [str(BIN / "gunicorn"), "--config", "python:web.gunicorn_conf", "--bind", bind,
            "--workers", str(workers), "--threads", "4", "--access-logfile", "-", "web.wsgi:app"]


def start_gunicorn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        # Its own session: a Ctrl-C in the terminal reaches only us, and we stop it.
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop_gunicorn(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of its group
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def wait_healthy(base: str, process: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n{tail(log)}")
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"gunicorn not healthy after {timeout_s:.0f} s:\n{tail(log)}")


def worker_pids(master: int) -> list[int]:
    try:
        return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU of these processes (Linux /proc; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def connections_opened(sessions: list[requests.Session]) -> int:
    """TCP connections the sessions' urllib3 pools have opened so far."""
    return sum(pool.num_connections for session in sessions
               for pool in session.get_adapter("http://").poolmanager.pools._container.values())


def own_cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- the fixtures, through Berth's API ----------------------------------------------------

def api(session: requests.Session, base: str, path: str, body: dict) -> dict:
    answer = session.post(base + "/api/v1" + path, json=body, auth=("admin", ADMIN_PASSWORD),
                          timeout=REQUEST_TIMEOUT_S)
    if answer.status_code != 201:
        raise SystemExit(f"POST {path} -> {answer.status_code}: {answer.text[:300]}")
    return answer.json()


def create_fixtures(base: str) -> list[Scenario]:
    users = {"dev": "dev-alice", "guest": "guest-bob", "owner": "ops-carol"}
    passwords = {name: f"{name}-password-{os.getpid()}" for name in users.values()}
    with requests.Session() as session:
        for username, password in passwords.items():
            api(session, base, "/users", {"username": username, "password": password})
        api(session, base, "/projects", {"name": PRIVATE, "public": False, "admin": users["owner"]})
        api(session, base, f"/projects/{PRIVATE}/members", {"username": users["dev"], "role": "developer"})
        api(session, base, f"/projects/{PRIVATE}/members", {"username": users["guest"], "role": "guest"})
        api(session, base, "/projects", {"name": PUBLIC, "public": True})
        robot = api(session, base, f"/projects/{PRIVATE}/robots", {"name": "ci", "can_push": False})
    dev, guest = users["dev"], users["guest"]
    return [
        Scenario("developer pull+push", (dev, passwords[dev]), f"{PRIVATE}/{REPO}", "pull,push",
                 dev, ["pull", "push"]),
        Scenario("guest pull", (guest, passwords[guest]), f"{PRIVATE}/{REPO}", "pull",
                 guest, ["pull"]),
        Scenario("anonymous pull (public)", None, f"{PUBLIC}/base", "pull", "", ["pull"]),
        Scenario("robot pull", (robot["username"], robot["secret"]), f"{PRIVATE}/{REPO}", "pull",
                 robot["username"], ["pull"]),
    ]


HEALTHZ = Scenario("baseline /healthz", None, "", "", "", [], path="/healthz")


# --- one request ----------------------------------------------------------------------------

def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def check(scenario: Scenario, answer: requests.Response) -> str | None:
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}: {answer.text[:200]}"
    body = answer.json()
    if scenario is HEALTHZ:
        return None if body.get("status") == "ok" else f"unhealthy: {body}"
    token = body.get("token")
    if not isinstance(token, str) or not token:
        return f"no token in {sorted(body)}"
    claims = claims_of(token)
    access = claims.get("access")
    wanted = [{"type": "repository", "name": scenario.repository, "actions": scenario.expect_actions}]
    if claims.get("sub") != scenario.expect_subject or access != wanted:
        return f"wrong grant: sub={claims.get('sub')!r} access={access}"
    return None


def timed(session: requests.Session, base: str, scenario: Scenario) -> tuple[float, str | None]:
    started = time.perf_counter()
    try:
        answer = session.get(base + scenario.path, params=scenario.params if scenario is not HEALTHZ
                             else None, auth=scenario.auth, timeout=REQUEST_TIMEOUT_S)
        answer.content  # noqa: B018 - the whole body is part of the answer
    except requests.RequestException as error:
        return (time.perf_counter() - started) * 1000, f"{type(error).__name__}: {error}"
    ms = (time.perf_counter() - started) * 1000
    return ms, check(scenario, answer)


def run_load(sessions: list[requests.Session], base: str, scenarios: list[Scenario], total: int,
             max_seconds: float, stop: threading.Event) -> tuple[Tally, float]:
    """`total` requests, round-robin over `scenarios`, from one thread per session."""
    tally, counter, counter_lock = Tally(), [0], threading.Lock()
    deadline = time.monotonic() + max_seconds

    def client(number: int, session: requests.Session) -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            with counter_lock:
                index = counter[0]
                if index >= total:
                    return
                counter[0] += 1
            scenario = scenarios[index % len(scenarios)]
            at_s = time.perf_counter() - started
            ms, error = timed(session, base, scenario)
            tally.add(scenario.name, ms, error, number, at_s)

    threads = [threading.Thread(target=client, args=(n, s), daemon=True) for n, s in enumerate(sessions)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)  # short joins keep Ctrl-C responsive
    return tally, time.perf_counter() - started


def warm_up(sessions: list[requests.Session], base: str, scenarios: list[Scenario]) -> Tally:
    """Every session asks once per scenario, all sessions at once (as in the measurement),
    so each keep-alive connection's gunicorn worker knows every credential."""
    tally = Tally()

    def client(number: int, session: requests.Session) -> None:
        for scenario in scenarios:
            ms, error = timed(session, base, scenario)
            tally.add(scenario.name, ms, error, number)

    threads = [threading.Thread(target=client, args=(n, s), daemon=True) for n, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    return tally


# --- the report -----------------------------------------------------------------------------

def percentile(sorted_ms: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of the samples at or below."""
    rank = math.ceil(len(sorted_ms) * share - 1e-9)
    return sorted_ms[min(max(rank, 1), len(sorted_ms)) - 1]


def row(label: str, values: list[float], seconds: float | None) -> tuple[str, dict]:
    values = sorted(values)
    if not values:
        return f"| {label} | 0 | - | - | - | - | - |", {}
    stats = {"count": len(values), "p50": percentile(values, 0.50), "p90": percentile(values, 0.90),
             "p99": percentile(values, 0.99), "max": values[-1]}
    rate = f"{len(values) / seconds:,.0f}" if seconds else "-"
    return (f"| {label} | {len(values):,} | {stats['p50']:.2f} | {stats['p90']:.2f} | "
            f"{stats['p99']:.2f} | {stats['max']:.2f} | {rate} |"), stats


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine() -> str:
    usable = machine_cpus()
    return (f"nproc {usable} (cpu_count {os.cpu_count()}), Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.release()}")


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


# --- main -----------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="warm token requests (and /healthz)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads, one keep-alive session each")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound of each measured phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (the Procfile's default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (instance, gunicorn log)")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.max_seconds <= 0 or args.workers < 1:
        parser.error("--requests, --concurrency, --workers and --max-seconds must be positive")

    # SIGTERM (e.g. `timeout`) takes the same way out as Ctrl-C: through the finally.
    signal.signal(signal.SIGTERM, _interrupt)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    scratch = Path(tempfile.mkdtemp(prefix="berth-token-bench-"))
    instance, metrics_dir, log = scratch / "instance", scratch / "prometheus", scratch / "gunicorn.log"
    metrics_dir.mkdir()
    env = server_env(instance, metrics_dir)
    bind = f"127.0.0.1:{free_port()}"
    base = f"http://{bind}"
    argv = gunicorn_argv(bind, args.workers)
    load_before = load_average()
    stop = threading.Event()
    server: subprocess.Popen | None = None
    sessions: list[requests.Session] = []
    try:
        release = subprocess.run([str(BIN / "berth"), "release"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        if release.returncode != 0:
            raise SystemExit(f"berth release failed:\n{release.stdout}{release.stderr}")
        server = start_gunicorn(argv, env, log)
        wait_healthy(base, server, log)
        scenarios = create_fixtures(base)

        # Cold: the first request of each password credential, on a fresh connection.
        cold: list[float] = []
        for scenario in scenarios:
            if scenario.auth is None or scenario.auth[0].startswith("robot$"):
                continue
            with requests.Session() as fresh:
                ms, error = timed(fresh, base, scenario)
            if error:
                raise SystemExit(f"cold request {scenario.name}: {error}")
            cold.append(ms)

        # Warm-up through the sessions the measurement uses: each gunicorn worker one of
        # them is connected to learns every credential (the cache is per process).
        sessions = [requests.Session() for _ in range(args.concurrency)]
        warmup = warm_up(sessions, base, [*scenarios, HEALTHZ])
        if warmup.errors:
            raise SystemExit("warm-up failed:\n" + "\n".join(warmup.errors[:10]))
        hashed = {s.name for s in scenarios if s.auth and not s.auth[0].startswith("robot$")}
        slow_warmup = sum(s.ms > SLOW_WARMUP_MS and s.scenario in hashed for s in warmup.samples)

        workers = worker_pids(server.pid)
        cpu = {}
        for label, targets in (("tokens", scenarios), ("healthz", [HEALTHZ])):
            server_before, client_before = cpu_seconds(workers), own_cpu_seconds()
            connections_before = connections_opened(sessions)
            result = run_load(sessions, base, targets, args.requests, args.max_seconds, stop)
            cpu[label] = (cpu_seconds(workers) - server_before, own_cpu_seconds() - client_before,
                          connections_opened(sessions) - connections_before)
            if label == "tokens":
                tokens, token_s = result
            else:
                health, health_s = result
    except KeyboardInterrupt:
        stop.set()
        print("interrupted: stopping gunicorn", file=sys.stderr)
        return 130
    finally:
        stop.set()
        for session in sessions:
            session.close()
        stop_gunicorn(server)
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"token issuance: {args.requests:,} warm token requests + {args.requests:,} /healthz, "
          f"{args.concurrency} keep-alive client threads, gunicorn {args.workers} workers x 4 threads, "
          f"SQLite (embedded defaults)")
    print(f"command: {command}")
    print(f"server:  {shlex.join(argv[0:1]).replace(str(BIN) + '/', '')} {shlex.join(argv[1:])}")
    print(f"machine: {machine()}; load average (1 min) {load_before} before, {load_average()} after "
          "(other work on the machine competes for the same cores)")
    print()
    print("| scenario | count | p50 ms | p90 ms | p99 ms | max ms | req/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for scenario in scenarios:
        print(row(scenario.name, [s.ms for s in tokens.samples if s.scenario == scenario.name], token_s)[0])
    overall_line, overall = row("**overall, warm tokens**", [s.ms for s in tokens.samples], token_s)
    print(overall_line)
    cold_line, cold_stats = row("cold (password hash)", cold, None)
    print(cold_line)
    health_line, health_stats = row("baseline /healthz", [s.ms for s in health.samples], health_s)
    print(health_line)
    print()
    tokens_per_s = len(tokens.samples) / token_s if token_s else 0.0
    health_per_s = len(health.samples) / health_s if health_s else 0.0
    print(f"warm-up: {len(warmup.samples)} requests through the measuring sessions; {slow_warmup} password-"
          f"credential requests slower than {SLOW_WARMUP_MS:.0f} ms (the verified-credentials cache is per "
          f"process: each gunicorn worker pays the hash once per credential)")
    if overall and health_stats:
        print(f"token over /healthz: p50 x{overall['p50'] / health_stats['p50']:.2f} "
              f"(+{overall['p50'] - health_stats['p50']:.2f} ms), p99 x{overall['p99'] / health_stats['p99']:.2f}, "
              f"throughput {tokens_per_s:,.0f}/s vs {health_per_s:,.0f}/s")
    for label, tally in (("tokens", tokens), ("healthz", health)):
        answered = max(1, len(tally.samples) + len(tally.errors))
        server_cpu, client_cpu, reconnects = cpu[label]
        print(f"{label}: CPU per request: gunicorn workers {server_cpu / answered * 1000:.2f} ms, this client "
              f"{client_cpu / answered * 1000:.2f} ms (both share the {machine_cpus()} cores); "
              f"new connections during the phase: {reconnects}")
    slowest = sorted(tokens.samples, key=lambda sample: sample.ms)[-5:][::-1]
    print("slowest warm token requests: " + ", ".join(
        f"{s.ms:.0f} ms ({s.scenario}, client {s.client}, {s.at_s:.2f} s in)" for s in slowest))
    short = [f"{label} stopped at {len(t.samples) + len(t.errors):,} by --max-seconds"
             for label, t in (("tokens", tokens), ("/healthz", health))
             if len(t.samples) + len(t.errors) < args.requests]
    if short:
        print("note: " + "; ".join(short))
    errors = tokens.errors + health.errors
    if errors:
        print(f"FAILED: {len(errors)} request(s) without a correct answer, e.g.:", file=sys.stderr)
        for message in errors[:10]:
            print("  " + message, file=sys.stderr)
    print(json.dumps({
        "p50_ms": round(overall.get("p50", 0.0), 2), "p99_ms": round(overall.get("p99", 0.0), 2),
        "tokens_per_s": round(tokens_per_s, 1), "cold_ms": round(cold_stats.get("p50", 0.0), 1),
        "requests": len(tokens.samples) + len(tokens.errors), "concurrency": args.concurrency, "errors": len(errors),
        "healthz_p50_ms": round(health_stats.get("p50", 0.0), 2),
        "healthz_p99_ms": round(health_stats.get("p99", 0.0), 2),
        "healthz_per_s": round(health_per_s, 1),
    }))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
