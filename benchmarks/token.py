"""Registry token issuance through the real web server: how fast does Berth answer a docker
client's `GET /service/token`, warm and cold, next to the bare web stack (`/healthz`)?

Builds a fresh instance in a temp folder (embedded defaults: SQLite), runs `berth release`,
starts gunicorn exactly as the Procfile does (on a free 127.0.0.1 port), creates users, a
private project with a developer and a guest, a public project and a pull-only robot through
the /api/v1 API, then:

  cold      the first token request of each password credential (pays the scrypt hash);
  warm-up   every client asks once per scenario, so each gunicorn worker a client's
            connection talks to has the credentials in its verified-credentials cache (it is
            per process);
  measured  --requests token requests from --concurrency clients, a round-robin mix of four
            scenarios, every answer checked (200, a token, the expected grant);
  baseline  the same number of `GET /healthz` (one `SELECT 1`) from the same clients.

The load client is kept as cheap as it can be, since it shares the machine's cores with
gunicorn (real docker clients run elsewhere): each client is its own process (forked, so
clients do not share a GIL) with one keep-alive `http.client` connection, requests prepared
once, a shared counter handing out the next request. Children report their samples and their
own CPU time; the report shows client and server CPU per request, and how many of the
keep-alive connections each gunicorn worker holds (the kernel decides; it moves the tail).

Prints a table, the command line and the machine, and as its last line one JSON object.
Exits 1 if any request failed. gunicorn and the clients are stopped in a `finally`, on Ctrl-C
too.

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
import http.client  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

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
    def target(self) -> str:
        if not self.repository:
            return self.path
        return self.path + "?" + urlencode({"service": SERVICE,
                                            "scope": f"repository:{self.repository}:{self.actions}"})

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.auth is None else {"Authorization": basic_auth(*self.auth)}


@dataclass
class Sample:
    scenario: str
    ms: float
    client: int = 0  # which client process (keep-alive connection)
    at_s: float = 0.0  # when it started, seconds into the phase


@dataclass
class Phase:
    samples: list[Sample]
    errors: list[str]
    seconds: float  # from the start signal to the last client's last answer
    client_cpu_s: float  # the client processes' own CPU (and the parent's) during the phase
    connections: int  # TCP connections opened during the phase


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Connection(http.client.HTTPConnection):
    """A keep-alive connection that counts how often it (re)connects."""
    opened = 0

    def connect(self) -> None:
        self.opened += 1
        super().connect()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def call(connection: Connection, method: str, target: str, headers: dict[str, str],
         body: bytes | None = None) -> tuple[int, bytes]:
    try:
        connection.request(method, target, body=body, headers=headers)
        answer = connection.getresponse()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        # The server closed the idle keep-alive connection: reconnect once, as urllib3
        # does (counted in "new connections during the phase").
        connection.close()
        connection.request(method, target, body=body, headers=headers)
        answer = connection.getresponse()
    return answer.status, answer.read()


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


def wait_healthy(address: tuple[str, int], process: subprocess.Popen, log: Path,
                 timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n{tail(log)}")
        try:
            with Connection(*address, timeout=2) as probe:
                if call(probe, "GET", "/healthz", {})[0] == 200:
                    return
        except (OSError, http.client.HTTPException):
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


def connections_per_worker(workers: list[int], port: int) -> list[int]:
    """Established connections to `port` held by each worker (Linux /proc; [] elsewhere)."""
    try:
        rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    except OSError:
        return []
    ours = {f"socket:[{row[9]}]" for row in rows if row[3] == "01" and int(row[1].split(":")[1], 16) == port}
    counts = []
    for pid in workers:
        try:
            counts.append(sum(os.readlink(f"/proc/{pid}/fd/{fd}") in ours for fd in os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            counts.append(-1)  # unknown
    return counts


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- the fixtures, through Berth's API ----------------------------------------------------

def api(connection: Connection, path: str, body: dict) -> dict:
    headers = {"Authorization": basic_auth("admin", ADMIN_PASSWORD), "Content-Type": "application/json"}
    status, answer = call(connection, "POST", "/api/v1" + path, headers, json.dumps(body).encode())
    if status != 201:
        raise SystemExit(f"POST {path} -> {status}: {answer[:300]!r}")
    return json.loads(answer)


def create_fixtures(address: tuple[str, int]) -> list[Scenario]:
    users = {"dev": "dev-alice", "guest": "guest-bob", "owner": "ops-carol"}
    passwords = {name: f"{name}-password-{os.getpid()}" for name in users.values()}
    with Connection(*address, timeout=REQUEST_TIMEOUT_S) as connection:
        for username, password in passwords.items():
            api(connection, "/users", {"username": username, "password": password})
        api(connection, "/projects", {"name": PRIVATE, "public": False, "admin": users["owner"]})
        api(connection, f"/projects/{PRIVATE}/members", {"username": users["dev"], "role": "developer"})
        api(connection, f"/projects/{PRIVATE}/members", {"username": users["guest"], "role": "guest"})
        api(connection, "/projects", {"name": PUBLIC, "public": True})
        robot = api(connection, f"/projects/{PRIVATE}/robots", {"name": "ci", "can_push": False})
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


def check(scenario: Scenario, status: int, answer: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}: {answer[:200]!r}"
    body = json.loads(answer)
    if scenario.path == HEALTHZ.path:
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


def timed(connection: Connection, scenario: Scenario, target: str,
          headers: dict[str, str]) -> tuple[float, float, str | None]:
    """(start, ms, error) of one checked request; the whole body is part of the answer."""
    started = time.perf_counter()
    try:
        status, answer = call(connection, "GET", target, headers)
        ms = (time.perf_counter() - started) * 1000
        return started, ms, check(scenario, status, answer)
    except (OSError, http.client.HTTPException, ValueError) as error:
        return started, (time.perf_counter() - started) * 1000, f"{type(error).__name__}: {error}"


# --- the clients: one process and one keep-alive connection each ---------------------------

def client(address: tuple[str, int], pipe, counter) -> None:
    """Runs in a child process. Each order is (scenarios, total, deadline, shared): `total`
    requests round-robin over the scenarios, numbered by the shared counter (or, not shared,
    each scenario once by this client), until the perf_counter `deadline`. Answers
    (samples, errors, CPU seconds, connections opened, perf_counter at the end)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    connection = Connection(*address, timeout=REQUEST_TIMEOUT_S)
    while (order := pipe.recv()) is not None:
        scenarios, total, deadline, shared = order
        prepared = [(s, s.target, s.headers) for s in scenarios]
        samples, errors, index = [], [], -1
        cpu_before, opened_before = time.process_time(), connection.opened
        while time.perf_counter() < deadline:
            if shared:
                with counter.get_lock():
                    index = counter.value
                    counter.value += 1
            else:
                index += 1
            if index >= total:
                break
            scenario, target, headers = prepared[index % len(prepared)]
            started, ms, error = timed(connection, scenario, target, headers)
            if error is None:
                samples.append((scenario.name, ms, started))
            else:
                errors.append(f"{scenario.name}: {error}")
        pipe.send((samples, errors, time.process_time() - cpu_before,
                   connection.opened - opened_before, time.perf_counter()))
    connection.close()


def run_phase(clients: list, scenarios: list[Scenario], total: int | None, max_seconds: float,
              counter) -> Phase:
    """One phase on all clients at once; `total` None: every client asks each scenario once."""
    with counter.get_lock():
        counter.value = 0
    own_before = time.process_time()
    started = time.perf_counter()
    for _process, pipe in clients:
        pipe.send((scenarios, total or len(scenarios), started + max_seconds, total is not None))
    phase = Phase([], [], 0.0, 0.0, 0)
    for number, (process, pipe) in enumerate(clients):
        try:
            samples, errors, cpu_s, opened, finished = pipe.recv()
        except EOFError:
            raise SystemExit(f"client {number} died (exit code {process.exitcode})") from None
        phase.samples += [Sample(name, ms, number, at - started) for name, ms, at in samples]
        phase.errors += errors
        phase.client_cpu_s += cpu_s
        phase.connections += opened
        phase.seconds = max(phase.seconds, finished - started)
    phase.client_cpu_s += time.process_time() - own_before
    return phase


def start_clients(count: int, address: tuple[str, int], counter) -> list:
    context = multiprocessing.get_context("fork")
    clients = []
    for _ in range(count):
        ours, theirs = context.Pipe()
        process = context.Process(target=client, args=(address, theirs, counter), daemon=True)
        process.start()
        theirs.close()  # so a dead client reads as EOFError here
        clients.append((process, ours))
    return clients


def stop_clients(clients: list) -> None:
    """Idle clients leave on their own; busy ones (Ctrl-C mid-phase) get SIGTERM after 2 s."""
    for _process, pipe in clients:
        try:
            pipe.send(None)
        except OSError:
            pass
    deadline = time.monotonic() + 2
    for process, pipe in clients:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join(5)
        pipe.close()


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
    parser.add_argument("--concurrency", type=int, default=4, help="client processes, one keep-alive connection each")
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
    address = ("127.0.0.1", free_port())
    argv = gunicorn_argv(f"{address[0]}:{address[1]}", args.workers)
    load_before = load_average()
    server: subprocess.Popen | None = None
    clients: list = []
    try:
        release = subprocess.run([str(BIN / "berth"), "release"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        if release.returncode != 0:
            raise SystemExit(f"berth release failed:\n{release.stdout}{release.stderr}")
        server = start_gunicorn(argv, env, log)
        wait_healthy(address, server, log)
        scenarios = create_fixtures(address)

        # Cold: the first request of each password credential, on a fresh connection.
        cold: list[float] = []
        for scenario in scenarios:
            if scenario.auth is None or scenario.auth[0].startswith("robot$"):
                continue
            with Connection(*address, timeout=REQUEST_TIMEOUT_S) as fresh:
                _, ms, error = timed(fresh, scenario, scenario.target, scenario.headers)
            if error:
                raise SystemExit(f"cold request {scenario.name}: {error}")
            cold.append(ms)

        # Warm-up through the connections the measurement uses: each gunicorn worker one of
        # them is connected to learns every credential (the cache is per process).
        counter = multiprocessing.get_context("fork").Value("q", 0)
        clients = start_clients(args.concurrency, address, counter)
        warmup = run_phase(clients, [*scenarios, HEALTHZ], None, args.max_seconds, counter)
        if warmup.errors:
            raise SystemExit("warm-up failed:\n" + "\n".join(warmup.errors[:10]))
        hashed = {s.name for s in scenarios if s.auth and not s.auth[0].startswith("robot$")}
        slow_warmup = sum(s.ms > SLOW_WARMUP_MS and s.scenario in hashed for s in warmup.samples)

        workers = worker_pids(server.pid)
        spread = connections_per_worker(workers, address[1])
        server_cpu = {}
        for label, targets in (("tokens", scenarios), ("healthz", [HEALTHZ])):
            server_before = cpu_seconds(workers)
            phase = run_phase(clients, targets, args.requests, args.max_seconds, counter)
            server_cpu[label] = cpu_seconds(workers) - server_before
            if label == "tokens":
                tokens = phase
            else:
                health = phase
    except KeyboardInterrupt:
        print("interrupted: stopping the clients and gunicorn", file=sys.stderr)
        return 130
    finally:
        stop_clients(clients)
        stop_gunicorn(server)
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    token_s, health_s = tokens.seconds, health.seconds
    print(f"token issuance: {args.requests:,} warm token requests + {args.requests:,} /healthz, "
          f"{args.concurrency} keep-alive client processes, gunicorn {args.workers} workers x 4 threads, "
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
    print(f"warm-up: {len(warmup.samples)} requests through the measuring connections; {slow_warmup} password-"
          f"credential requests slower than {SLOW_WARMUP_MS:.0f} ms (the verified-credentials cache is per "
          f"process: each gunicorn worker pays the hash once per credential)")
    if overall and health_stats:
        print(f"token over /healthz: p50 x{overall['p50'] / health_stats['p50']:.2f} "
              f"(+{overall['p50'] - health_stats['p50']:.2f} ms), p99 x{overall['p99'] / health_stats['p99']:.2f}, "
              f"throughput {tokens_per_s:,.0f}/s vs {health_per_s:,.0f}/s")
    per_request = {}
    for label, phase in (("tokens", tokens), ("healthz", health)):
        answered = max(1, len(phase.samples) + len(phase.errors))
        per_request[label] = (server_cpu[label] / answered * 1000, phase.client_cpu_s / answered * 1000)
        print(f"{label}: CPU per request: gunicorn workers {per_request[label][0]:.2f} ms, the client "
              f"processes {per_request[label][1]:.2f} ms (both share the {machine_cpus()} cores); "
              f"new connections during the phase: {phase.connections}")
    print(f"keep-alive connections per gunicorn worker: {', '.join(map(str, spread)) or '?'} (the kernel "
          "picks the worker that accepts each; a worker serving more connections runs more requests at "
          "once on its threads and GIL)")
    slowest = sorted(tokens.samples, key=lambda sample: sample.ms)[-5:][::-1]
    print("slowest warm token requests: " + ", ".join(
        f"{s.ms:.0f} ms ({s.scenario}, client {s.client}, {s.at_s:.2f} s in)" for s in slowest))
    short = [f"{label} stopped at {len(p.samples) + len(p.errors):,} by --max-seconds"
             for label, p in (("tokens", tokens), ("/healthz", health))
             if len(p.samples) + len(p.errors) < args.requests]
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
        "server_cpu_ms": round(per_request["tokens"][0], 2), "client_cpu_ms": round(per_request["tokens"][1], 2),
        "connections_per_worker": spread,
    }))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
