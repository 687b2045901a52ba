"""Releases: does a rolling release keep enough instances in discovery, how fast does a
crashing release roll back, and how fast does a blue-green switch reach discovery?

Starts the test bed (scripts/testbed: 3 dockerd and the primary registry, the busybox image
built on e1 and pushed as library/busybox:1 and :2, the same files under another label) and,
through its harness (testbed.berth), a real Berth on the embedded defaults in a fresh
instance, guarding that registry with its token service, with the Procfile's layout (web
under gunicorn, `worker -Q celery` of 4, `probes -Q probes` of 2, beat) and every interval
at Berth's default; both images are pulled onto every engine first (no pull is timed),
the engines are registered as hosts (label engine=eN) and waited for until up.
One application `rel` with one service `web` of --replicas (12) instances of busybox httpd
on the port Berth allocates (host network, 127.0.0.1 only, a wget healthcheck every 0.5 s,
as tests/integration/apps.py's http_service), deployed and waited for until every instance
is healthy and discovery lists them all. Then, on the same run:

    release     :1 -> :2, rolling, batch 25%, max_surge 25%, max_unavailable 25% (so at most
                3 of 12 may be out: expected_min_healthy = 12 - 3 = 9), default deadline.
                A thread reads discovery (GET .../endpoints) every 20 ms throughout the run
                (bounded in reads and time); min_healthy = the fewest endpoints of any read
                from the POST to the status `succeeded`; release_s = from the POST to that
                status (the release polled every 0.1 s)
    rollback    three releases to a crashing revision (changes image :1 and command
                `sh -c "exit 3"`), deadline_s 10 (--deadline), rolling batch 25%, rollback
                on failure: "surge" with max_surge 25% (the old containers stay while the new
                crash); "stop-first" with max_surge 0 (3 old containers go first, so the
                rollback has to start them again); "stop-first, deadline", the same with
                max_failures 1000, so that the batch's deadline, not the crash count, fails
                it. rollback_s = from the release's own progress `failed_at` (the start of
                the round whose gate failed) to every instance back on the old revision and
                healthy: the application API shows `replicas` running instances, all of the
                old revision and healthy, no live one of another revision, and discovery
                lists exactly those instances' endpoints. The JSON's rollback_s is the
                slowest of the three.
    switch      blue-green (strategy blue_green, switch "manual": green starts beside blue,
                and discovery moves only on promote) to :1 again; once the release waits
                with green ready, POST promote; switch_s = from the promote POST to the
                first discovery read listing exactly green's endpoints (a blocking query
                ?index=N&wait=30 started before the promote is the cross-check); then
                promote again to retire blue.

Baseline in the same run, before the application exists: a raw batch, one container of
the service's kind per engine (3, as a 25% batch of 12) created and started at once through
the engines' API and timed until healthy (median of --raw-rounds); release_s is compared
with 4 x that floor.

Prints a table, the command, the machine, per scenario the release's own events (audit)
and what the worker's deploy passes did, and as the last line one JSON object.

    .venv/bin/python benchmarks/release.py [--replicas 12] [--deadline 10] [--poll 0.02]
                                           [--raw-rounds 3] [--reconcile-interval S]
                                           [--timeout 300] [--keep-logs DIR]

Everything it starts (bed, web, workers, beat, instance folder) is stopped and removed in
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
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "scripts"))
sys.path.insert(0, str(REPOSITORY / "platform"))
sys.path.insert(0, str(REPOSITORY))

from berth import db  # noqa: E402
from berth.engine import LABEL_APPLICATION, LABEL_REVISION, LABEL_SERVICE, LABEL_SLOT  # noqa: E402
from scheduler.orchestration import rollout  # noqa: E402
from testbed import LOCALHOST, TestBed  # noqa: E402
from testbed.berth import Berth  # noqa: E402
from tests.support import wait_for  # noqa: E402

ADMIN_PASSWORD = "bench-admin"
MiB = 2**20
APP, SERVICE = "rel", "web"
ENDED = ("succeeded", "rolled_back", "failed")
READY_HEALTH = ("healthy", None)  # as scheduler.orchestration.state: running and healthy
CRASH = ["sh", "-c", "exit 3"]
POLL_RELEASE_S = 0.1
POLL_STATE_S = 0.1


class Interrupted(BaseException):
    pass


def _on_sigterm(signum, _frame):
    raise Interrupted(f"signal {signum}")


def start_procfile_workers(berth: Berth) -> None:
    """The Procfile's layout: `worker -Q celery` (4) and `probes -Q probes` (2). The harness's
    start_worker() consumes both queues, as tests want; this is the production split."""
    celery = [str(Path(sys.executable).parent / "celery"), "-A", "berth.worker", "worker",
              "--loglevel", "INFO"]
    berth._spawn("worker", [*celery, "-Q", "celery", "--concurrency", "4", "--hostname", "worker@%h"])
    berth._spawn("probes", [*celery, "-Q", "probes", "--concurrency", "2", "--hostname", "probes@%h"])


def http_service(name: str, image: str, replicas: int) -> dict:
    """busybox httpd on the port Berth allocates ($PORT), host network, 127.0.0.1 only (as
    tests/integration/apps.py)."""
    return {
        "name": name, "image": image, "replicas": replicas, "port": True, "cpus": 0.1,
        "memory": 32 * MiB,
        "command": ["sh", "-c", "mkdir -p /www && echo " + name + " > /www/index.html"
                    " && exec httpd -f -p 127.0.0.1:$PORT -h /www"],
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$PORT/"],
                        "interval_s": 0.5, "retries": 2},
    }


# -- Berth's API ----------------------------------------------------------------------------

class Api:
    """Berth's API as admin, on one keep-alive session per thread."""

    def __init__(self, berth: Berth):
        self.berth = berth
        self._local = threading.local()

    def session(self):
        import requests

        if getattr(self._local, "session", None) is None:
            session = requests.Session()
            session.auth = ("admin", self.berth.admin_password)
            session.trust_env = False
            self._local.session = session
        return self._local.session

    def call(self, method: str, path: str, expect: int = 200, timeout: float = 30, **kwargs):
        response = self.session().request(method, self.berth.url + path, timeout=timeout, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:400]}")
        return response.json() if response.content else None

    def service_path(self) -> str:
        return f"/api/v1/applications/{APP}/services/{SERVICE}"

    def endpoints(self, **params) -> dict:
        return self.call("GET", self.service_path() + "/endpoints", params=params or None,
                         timeout=90)

    def service(self) -> dict:
        found = self.call("GET", f"/api/v1/applications/{APP}")
        return next(s for s in found["services"] if s["name"] == SERVICE)

    def release(self, release_id: int) -> dict:
        return self.call("GET", f"{self.service_path()}/releases/{release_id}")

    def start_release(self, body: dict) -> tuple[dict, float, float]:
        """The release, and when (time.time()) the POST was sent and answered."""
        sent = time.time()
        found = self.call("POST", self.service_path() + "/releases", expect=201, json=body)
        return found, sent, time.time()

    def act(self, release_id: int, action: str) -> tuple[dict, float, float]:
        sent = time.time()
        found = self.call("POST", f"{self.service_path()}/releases/{release_id}/{action}")
        return found, sent, time.time()

    def audit(self, since: float) -> list[dict]:
        """The service's release events from `since` (time.time()) on, oldest first."""
        found = self.call("GET", "/api/v1/audit", params={
            "kind": "release.", "subject": f"{APP}/{SERVICE}", "limit": 1000,
            "since": datetime.fromtimestamp(since - 1, timezone.utc).replace(tzinfo=None).isoformat()})
        return sorted((e for e in found if wall(e["at"]) >= since - 0.05), key=lambda e: e["id"])


def wall(text: str | None) -> float | None:
    """An API timestamp (naive UTC, ISO) as Unix seconds."""
    if not text:
        return None
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


# -- discovery, read over and over ---------------------------------------------------------

class DiscoveryPoller:
    """Reads discovery in a thread, every `interval_s`, bounded in reads and time; keeps each
    read as (sent, answered, endpoints) with time.time() stamps."""

    def __init__(self, api: Api, interval_s: float, limit_s: float, max_reads: int):
        self.api, self.interval_s, self.limit_s, self.max_reads = api, interval_s, limit_s, max_reads
        self.reads: list[tuple[float, float, tuple[str, ...]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="discovery-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()
        wait_for(lambda: self.reads, 30, "the discovery poller's first read")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        last: tuple[str, ...] | None = None
        while not self._stop.is_set() and len(self.reads) < self.max_reads \
                and time.monotonic() < deadline:
            sent = time.time()
            try:
                current = tuple(sorted(self.api.endpoints()["endpoints"]))
            except Exception as error:  # noqa: BLE001 - counted and shown, the run goes on
                self.errors.append(f"{type(error).__name__}: {error}"[:200])
                self._stop.wait(0.5)
                continue
            if current == last:
                current = last  # one tuple per distinct answer
            last = current
            self.reads.append((sent, time.time(), current))
            self._stop.wait(self.interval_s)

    def between(self, since: float, until: float) -> list[tuple[float, float, tuple[str, ...]]]:
        """The reads that overlap [since, until]."""
        return [r for r in list(self.reads) if r[1] >= since and r[0] <= until]

    def changes(self, since: float, until: float) -> list[tuple[float, tuple[str, ...]]]:
        """(answered, endpoints) of each read that answered differently from the one before."""
        out, before = [], None
        for sent, answered, endpoints in self.between(since, until):
            if endpoints != before:
                out.append((answered, endpoints))
            before = endpoints
        return out


class BlockingWatch:
    """One blocking query (?index=N&wait=...) in a thread: when did it answer, with what."""

    def __init__(self, api: Api, index: int, wait_s: float):
        self.api, self.index, self.wait_s = api, index, wait_s
        self.answered: float | None = None
        self.result: dict | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="blocking-query", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.result = self.api.endpoints(index=self.index, wait=self.wait_s)
            self.answered = time.time()
        except Exception as error:  # noqa: BLE001
            self.error = f"{type(error).__name__}: {error}"[:300]


# -- the engines, read directly -------------------------------------------------------------

def engine_containers(engine: dict) -> list[dict]:
    filters = {"label": [f"{LABEL_APPLICATION}={APP}", f"{LABEL_SERVICE}={SERVICE}"]}
    query = urllib.parse.urlencode({"all": "1", "filters": json.dumps(filters)})
    conn = http.client.HTTPConnection(LOCALHOST, engine["port"], timeout=10)
    try:
        conn.request("GET", f"/v1.41/containers/json?{query}")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"{engine['name']}: containers -> {response.status} {body[:200]!r}")
    return json.loads(body)


def engine_revisions(engines: list[dict]) -> dict[str, int]:
    """'revision/state' -> count of the service's containers on every engine."""
    out: dict[str, int] = {}
    for engine in engines:
        for c in engine_containers(engine):
            key = f"{c['Labels'].get(LABEL_REVISION)}/{c['State']}"
            out[key] = out.get(key, 0) + 1
    return out


def engine_events(engines: list[dict], since: float, until: float) -> list[dict]:
    """The service's container events on every engine in [since, until]: action, time,
    slot, revision."""
    filters = {"type": ["container"], "label": [f"{LABEL_APPLICATION}={APP}",
                                                 f"{LABEL_SERVICE}={SERVICE}"]}
    query = urllib.parse.urlencode({"since": f"{since:.6f}", "until": f"{until:.6f}",
                                    "filters": json.dumps(filters)})
    found = []
    for engine in engines:
        conn = http.client.HTTPConnection(LOCALHOST, engine["port"], timeout=30)
        try:
            conn.request("GET", f"/v1.41/events?{query}")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        decoder, index = json.JSONDecoder(), 0
        while index < len(body):
            if body[index].isspace():
                index += 1
                continue
            event, index = decoder.raw_decode(body, index)
            labels = (event.get("Actor") or {}).get("Attributes") or {}
            try:
                slot, revision = int(labels[LABEL_SLOT]), int(labels[LABEL_REVISION])
            except (KeyError, ValueError):
                continue
            found.append({"action": event.get("Action") or event.get("status"),
                          "at": event["timeNano"] / 1e9, "slot": slot, "revision": revision})
    return sorted(found, key=lambda e: e["at"])


def batch_spans(events: list[dict], old: int, new: int, size: int, origin: float) -> list[dict]:
    """Per batch (slots size*k .. size*k+size-1): when its new containers were created,
    started and healthy (the last of each), and when its old ones were destroyed, in
    seconds after `origin`."""
    spans: dict[int, dict] = {}
    for e in events:
        batch = e["slot"] // size
        span = spans.setdefault(batch, {})
        key = None
        if e["revision"] == new and e["action"] in ("create", "start"):
            key = e["action"]
        elif e["revision"] == new and e["action"].startswith("health_status") \
                and e["action"].endswith("healthy") and "unhealthy" not in e["action"]:
            key = "healthy"
        elif e["revision"] == old and e["action"] == "destroy":
            key = "old_destroyed"
        if key:
            span[key] = max(span.get(key, 0.0), e["at"] - origin)
            span.setdefault("first_" + key, e["at"] - origin)
    return [spans[k] for k in sorted(spans)]


def engine_call(engine: dict, method: str, path: str, body: dict | None = None,
                timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOCALHOST, engine["port"], timeout=timeout)
    try:
        conn.request(method, f"/v1.41{path}", body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"} if body is not None else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw_batch(engines: list[dict], image: str, per_engine: int) -> float:
    """The engine's floor for one batch: `per_engine` containers of the service's own kind
    (busybox httpd, host network, 0.1 CPU, 32 MiB, hardened as Berth does, the same wget
    healthcheck every 0.5 s) created and started on each engine at once, timed until every
    one is healthy; then removed."""
    ids: list[tuple[dict, str]] = []
    errors: list[str] = []

    def launch(engine: dict, number: int) -> None:
        port = engine["port_range"][1] - number  # the top of the range; Berth has nothing yet
        body = {
            "Image": image, "Env": [f"PORT={port}"],
            "Cmd": ["sh", "-c", f"mkdir -p /www && echo raw > /www/index.html && exec httpd -f "
                    f"-p 127.0.0.1:{port} -h /www"],
            "Labels": {"berth.benchmark": "raw"},
            "Healthcheck": {"Test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}/"],
                            "Interval": 500_000_000, "Timeout": 2_000_000_000, "Retries": 2},
            "HostConfig": {"NetworkMode": "host", "NanoCpus": 100_000_000, "Memory": 32 * MiB,
                           "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
                           "PidsLimit": 512},
        }
        status, answer = engine_call(engine, "POST", "/containers/create", body)
        if status != 201:
            errors.append(f"create on {engine['name']}: {status} {answer[:200]!r}")
            return
        container = json.loads(answer)["Id"]
        ids.append((engine, container))
        status, answer = engine_call(engine, "POST", f"/containers/{container}/start")
        if status not in (204, 304):
            errors.append(f"start on {engine['name']}: {status} {answer[:200]!r}")

    began = time.monotonic()
    try:
        threads = [threading.Thread(target=launch, args=(e, n)) for e in engines for n in range(per_engine)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        if errors:
            raise RuntimeError("raw batch: " + "; ".join(errors))
        deadline = time.monotonic() + 60
        while True:
            healthy = 0
            for engine, container in ids:
                status, answer = engine_call(engine, "GET", f"/containers/{container}/json")
                state = json.loads(answer)["State"] if status == 200 else {}
                healthy += (state.get("Health") or {}).get("Status") == "healthy"
            if healthy == len(engines) * per_engine:
                return time.monotonic() - began
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw batch: {healthy} of {len(ids)} healthy after 60 s")
            time.sleep(0.05)
    finally:
        for engine, container in ids:
            engine_call(engine, "DELETE", f"/containers/{container}?force=1")


# -- conditions -----------------------------------------------------------------------------

def whole_on(api: Api, revision: int, replicas: int) -> tuple[bool, str]:
    """Every instance on `revision` and healthy: the API's instances (running ones all of that
    revision and healthy, `replicas` of them, no live instance of another revision), and
    discovery lists exactly their endpoints. Also a short description of what is there."""
    service = api.service()
    live = [i for i in service["instances"] if i["state"] != "removed"]
    running = [i for i in live if i["state"] == "running"]
    good = [i for i in running if i["revision"] == revision and i["health"] in READY_HEALTH]
    others = [i for i in live if i["revision"] != revision]
    listed = set(api.endpoints()["endpoints"])
    wanted = {f"127.0.0.1:{i['host_port']}" for i in good}
    ok = (len(good) == replicas and len(running) == replicas and not others
          and len(listed) == replicas and {port_of(e) for e in listed} == {i["host_port"] for i in good})
    seen: dict[str, int] = {}
    for i in live:
        key = f"r{i['revision']} {i['state']}/{i['health']}"
        seen[key] = seen.get(key, 0) + 1
    return ok, f"{seen}; discovery {len(listed)} ({len(listed & wanted)} of them healthy r{revision})"


def wait_whole(api: Api, revision: int, replicas: int, timeout_s: float) -> float:
    last = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ok, last = whole_on(api, revision, replicas)
        if ok:
            return time.time()
        time.sleep(POLL_STATE_S)
    raise TimeoutError(f"{APP}/{SERVICE} not whole on revision {revision} after {timeout_s} s: {last}")


def wait_release(api: Api, release_id: int, statuses: tuple[str, ...], timeout_s: float,
                 phase: str | None = None, until=None) -> tuple[dict, float]:
    """Poll the release until its status is one of `statuses` (and its phase `phase`), or
    `until(release)` holds; raises if it ends otherwise. Returns it and when it was seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = api.release(release_id)
        seen = time.time()
        if until is not None and until(found):
            return found, seen
        if found["status"] in statuses and (phase is None or found["progress"].get("phase") == phase):
            return found, seen
        if found["status"] in ENDED and until is None:
            raise RuntimeError(f"release {release_id} ended {found['status']}: {found['detail']}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"release {release_id} not {statuses} after {timeout_s} s: "
                               f"{found['status']}, {found['detail']}")
        time.sleep(POLL_RELEASE_S)


# -- the worker's log -------------------------------------------------------------------------

LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/[\w-]+\] (.*)$", re.M)
TASK_DONE = re.compile(r"Task berth\.workloads\.tasks\.(deploy_application|reconcile_all)\[[^\]]+\] "
                       r"succeeded in ([0-9.]+)s: (\{.*\})")


def passes_in(log: str) -> list[dict]:
    """The worker's deploy and reconcile passes in a log excerpt: when each ended (local time
    of the log, as Unix seconds), how long it ran, whether it found the lease taken, and what
    it did."""
    found = []
    for stamp, text in LOG_LINE.findall(log):
        match = TASK_DONE.search(text)
        if not match:
            continue
        ended = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        body = match.group(3)
        numbers = {k: int(v) for k, v in re.findall(r"'(created|removed)': (\d+)", body)}
        found.append({"task": match.group(1), "ended": ended, "s": float(match.group(2)),
                      "busy": "'busy'" in body, "created": numbers.get("created", 0),
                      "removed": numbers.get("removed", 0)})
    return found


def summarize_passes(passes: list[dict]) -> dict:
    deploys = [p for p in passes if p["task"] == "deploy_application" and not p["busy"]]
    busy = sum(p["busy"] for p in passes)
    rounds = [p for p in passes if p["task"] == "reconcile_all"]
    ends = sorted(p["ended"] for p in deploys)
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    return {"deploy_passes": len(deploys), "busy": busy, "reconcile_rounds": len(rounds),
            "pass_s_median": round(statistics.median(p["s"] for p in deploys), 3) if deploys else None,
            "pass_s_max": round(max(p["s"] for p in deploys), 3) if deploys else None,
            "gap_s_median": round(statistics.median(gaps), 3) if gaps else None,
            "created": sum(p["created"] for p in deploys + rounds),
            "removed": sum(p["removed"] for p in deploys + rounds)}


def fmt_passes(summary: dict) -> str:
    if not summary["deploy_passes"]:
        return "no deploy pass logged in the window"
    return (f"{summary['deploy_passes']} deploy passes (median {summary['pass_s_median']:.2f} s, "
            f"max {summary['pass_s_max']:.2f} s; one ended every {summary['gap_s_median'] or 0:.2f} s "
            f"median), {summary['busy']} found the lease taken, {summary['reconcile_rounds']} "
            f"reconcile rounds; +{summary['created']} -{summary['removed']} containers")


def timeline(events: list[dict], origin: float) -> list[str]:
    return [f"+{wall(e['at']) - origin:6.2f} s  {e['kind']}: {e['message'].split(': ', 1)[-1]}"
            for e in events]


# -- the scenarios ----------------------------------------------------------------------------

class Scenario:
    """The worker log offset and the audit start of one scenario, for its analysis."""

    def __init__(self, berth: Berth):
        self.berth = berth
        self.offset = berth.log_size("worker")

    def passes(self, origin: float | None = None) -> dict:
        """What the worker's passes did since the scenario began; with `origin`, each deploy
        pass's [start, end] in seconds after it too."""
        time.sleep(0.3)  # let the worker log the pass that got there
        found = passes_in(self.berth.log_since("worker", self.offset))
        summary = summarize_passes(found)
        if origin is not None:
            summary["windows"] = [
                (round(p["ended"] - p["s"] - origin, 2), round(p["ended"] - origin, 2),
                 p["created"], p["removed"], p["busy"])
                for p in found if p["task"] == "deploy_application"]
        return summary


def rolling_release(api: Api, berth: Berth, poller: DiscoveryPoller, engines: list[dict],
                    image: str, replicas: int, timeout_s: float) -> dict:
    settings = {"strategy": "rolling", "batch": "25%", "max_surge": "25%", "max_unavailable": "25%"}
    scenario = Scenario(berth)
    before = set(api.endpoints()["endpoints"])
    release, sent, answered = api.start_release({"changes": {"image": image}, **settings})
    found, succeeded_seen = wait_release(api, release["id"], ("succeeded",), timeout_s)
    reads = poller.between(sent, succeeded_seen)
    smallest = min(reads, key=lambda r: len(r[2]))
    whole_at = wait_whole(api, release["to_revision"], replicas, 60)
    finished = wall(found["finished_at"])
    size = rollout.Settings.from_dict(found["plan"]).batch_size(replicas)
    spans = batch_spans(engine_events(engines, sent, whole_at + 0.5), release["from_revision"],
                        release["to_revision"], size, sent)
    after = set(api.endpoints()["endpoints"])
    return {
        "id": release["id"], "to_revision": release["to_revision"], "settings": settings,
        "plan": found["plan"], "release_s": succeeded_seen - sent, "post_s": answered - sent,
        "finished_at_s": finished - sent if finished else None,
        "discovery_whole_s": whole_at - sent,
        "min_healthy": len(smallest[2]), "min_at_s": smallest[1] - sent, "reads": len(reads),
        "counts": sorted({len(r[2]) for r in reads}),
        "changes": len(poller.changes(sent, succeeded_seen)),
        # Strings only: a later batch's container may get a port an earlier batch freed.
        "ports_reused": len(before & after),
        "events": timeline(api.audit(sent), sent), "passes": scenario.passes(origin=sent),
        "batches_done": found["progress"].get("batches_done"), "batch_spans": spans,
    }


def crashing_release(api: Api, berth: Berth, poller: DiscoveryPoller, engines: list[dict],
                     image: str, replicas: int, deadline_s: float, max_surge, timeout_s: float,
                     max_failures: int | None = None) -> dict:
    settings = {"strategy": "rolling", "batch": "25%", "max_surge": max_surge,
                "max_unavailable": "25%", "deadline_s": deadline_s}
    if max_failures is not None:
        settings["max_failures"] = max_failures
    scenario = Scenario(berth)
    old = api.service()["revision"]
    release, sent, _ = api.start_release({"changes": {"image": image, "command": CRASH}, **settings})
    failed, failed_seen = wait_release(api, release["id"], (), timeout_s,
                                       until=lambda r: r["progress"].get("failed_at") is not None
                                       or r["status"] in ENDED)
    failed_at = failed["progress"].get("failed_at")
    if failed_at is None:
        raise RuntimeError(f"release {release['id']} ended {failed['status']} without failing: "
                           f"{failed['detail']}")
    whole_at = wait_whole(api, old, replicas, timeout_s)
    ended, ended_seen = wait_release(api, release["id"], ("rolled_back",), timeout_s)
    clean_at = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the crashed containers gone from the engines too
        revisions = engine_revisions(engines)
        if revisions == {f"{old}/running": replicas}:
            clean_at = time.time()
            break
        time.sleep(POLL_STATE_S)
    reads = poller.between(sent, whole_at)
    return {
        "id": release["id"], "settings": settings, "from_revision": old,
        "to_revision": release["to_revision"], "reason": ended["progress"].get("reason"),
        "detail": ended["detail"],
        "failed_after_s": failed_at - sent, "failed_seen_after_s": failed_seen - sent,
        "rollback_s": whole_at - failed_at,
        "rolled_back_status_s": ended_seen - failed_at,
        "finished_at_s": (wall(ended["finished_at"]) - failed_at) if ended["finished_at"] else None,
        "engine_clean_s": (clean_at - failed_at) if clean_at else None,
        "engine_at_end": engine_revisions(engines),
        "min_healthy": min(len(r[2]) for r in reads) if reads else None,
        "events": timeline(api.audit(sent), sent), "passes": scenario.passes(),
    }


def blue_green(api: Api, berth: Berth, poller: DiscoveryPoller, image: str, replicas: int,
               timeout_s: float) -> dict:
    settings = {"strategy": "blue_green", "switch": "manual"}
    scenario = Scenario(berth)
    blue = tuple(sorted(api.endpoints()["endpoints"]))
    release, sent, _ = api.start_release({"changes": {"image": image}, **settings})
    waiting, ready_seen = wait_release(api, release["id"], ("waiting",), timeout_s, phase="green")
    green_ports = {i["host_port"] for i in api.service()["instances"]
                   if i["revision"] == release["to_revision"] and i["state"] == "running"
                   and i["health"] in READY_HEALTH}
    current = api.endpoints()
    if tuple(sorted(current["endpoints"])) != blue:
        raise RuntimeError(f"discovery moved before the promote: {current}")
    watch = BlockingWatch(api, current["index"], 30)
    watch.start()
    time.sleep(0.3)  # the blocking query is in its wait before the promote
    promoted, promote_sent, promote_answered = api.act(release["id"], "promote")
    switched_read = None
    deadline = time.monotonic() + timeout_s
    while switched_read is None and time.monotonic() < deadline:
        for sent_at, answered_at, endpoints in poller.between(promote_sent, time.time()):
            if sent_at >= promote_sent and len(endpoints) == replicas \
                    and {port_of(e) for e in endpoints} == green_ports:
                switched_read = (sent_at, answered_at, endpoints)
                break
        if not poller.running:
            raise RuntimeError("the discovery poller stopped (bounded) before the switch")
        time.sleep(0.02)
    if switched_read is None:
        raise TimeoutError(f"discovery did not list green only within {timeout_s} s")
    watch.join(40)
    changes = poller.changes(promote_sent, switched_read[1] + 1)
    switched, switched_seen = wait_release(api, release["id"], ("waiting",), timeout_s, phase="switched")
    during_green = poller.between(sent, promote_sent)
    # Retire blue: a second promote ends the release.
    _, retire_sent, _ = api.act(release["id"], "promote")
    done, done_seen = wait_release(api, release["id"], ("succeeded",), timeout_s)
    blocking = None
    if watch.answered is not None and watch.result is not None:
        blocking = {"after_promote_s": watch.answered - promote_sent,
                    "green_only": {port_of(e) for e in watch.result["endpoints"]} == green_ports}
    return {
        "id": release["id"], "settings": settings, "to_revision": release["to_revision"],
        "green_ready_s": ready_seen - sent,
        "switch_s": switched_read[1] - promote_sent,
        "switch_read_sent_s": switched_read[0] - promote_sent,
        "promote_post_s": promote_answered - promote_sent,
        "blocking": blocking, "blocking_error": watch.error,
        "switched_status_s": switched_seen - promote_sent,
        "switched_at_s": (switched["progress"].get("switched_at") or 0) - promote_sent,
        "sequence_after_promote": [len(e) for _, e in changes],
        "mixed": any(set(e) - set(blue) and set(e) & set(blue) for _, e in changes),
        "green_min_blue": min(len(r[2]) for r in during_green) if during_green else None,
        "retire_s": done_seen - retire_sent,
        "events": timeline(api.audit(sent), sent), "passes": scenario.passes(),
    }


# -- setup --------------------------------------------------------------------------------------

def register_hosts(bed: TestBed) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=12)
    parser.add_argument("--deadline", type=float, default=10.0,
                        help="deadline_s of the crashing releases' batches")
    parser.add_argument("--raw-rounds", type=int, default=3,
                        help="raw batches (the engine's floor for one batch), median reported")
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between discovery reads")
    parser.add_argument("--reconcile-interval", type=float, default=None,
                        help="BERTH_RECONCILE_INTERVAL_S (default: Berth's own)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on each wait, s")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy Berth's logs to DIR")
    args = parser.parse_args(argv)
    command = ".venv/bin/python benchmarks/release.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    settings = {}
    if args.reconcile_interval is not None:
        settings["BERTH_RECONCILE_INTERVAL_S"] = str(args.reconcile_interval)
    facts = machine()
    work = Path(tempfile.mkdtemp(prefix="berth-release-"))
    (work / "logs").mkdir()
    berth = Berth(work / "instance", work / "logs", admin_password=ADMIN_PASSWORD, settings=settings)
    api = Api(berth)
    bed = poller = None
    try:
        berth.prepare()
        bed = TestBed(engines=3, registries=("primary",), postgres=False, redis=False)
        began = time.monotonic()
        bed.start()  # the images are pushed before Berth guards the registry
        berth.guard_registry(bed)
        berth.start_web()
        start_procfile_workers(berth)
        berth.start_beat()
        engines = bed.state["engines"]
        first = bed.image
        repository = first.rsplit(":", 1)[0]
        second = f"{repository}:2"
        credentials = {"username": "admin", "password": ADMIN_PASSWORD}
        for engine in engines[1:]:  # both images on every engine, as on e1: no pull is timed
            for image in (first, second):
                bed.load_image(engine["name"], image, credentials)
        register_hosts(bed)
        wait_for(lambda: hosts_up(len(engines)), 90, "the 3 hosts to be up")
        config = berth.config
        print(f"environment up in {time.monotonic() - began:.1f} s: Berth {berth.url}, engines "
              + ", ".join(f"{e['name']}={e['url']}" for e in engines) + f", images {first}, {second}",
              flush=True)

        # What a pass pays before its first create on each host: a pull of an image the engine
        # already has, through the registry and Berth's token service (berth.workloads.act).
        pulls = []
        for _ in range(3):
            for engine in engines:
                t = time.monotonic()
                bed.load_image(engine["name"], second, credentials)
                pulls.append(time.monotonic() - t)
        raws = [raw_batch(engines, second, 1) for _ in range(args.raw_rounds)]
        print(f"raw batch (3 containers, one per engine, to healthy): "
              + ", ".join(f"{r:.2f}" for r in raws) + " s", flush=True)

        t = time.monotonic()
        api.call("POST", "/api/v1/applications", expect=201,
                 json={"name": APP, "services": [http_service(SERVICE, first, args.replicas)]})
        wait_whole(api, api.service()["revision"], args.replicas, args.timeout)
        deploy_s = time.monotonic() - t
        print(f"{APP}/{SERVICE}: {args.replicas} healthy and in discovery in {deploy_s:.1f} s",
              flush=True)

        poller = DiscoveryPoller(api, args.poll, limit_s=1800, max_reads=100_000)
        poller.start()

        rolled = rolling_release(api, berth, poller, engines, second, args.replicas, args.timeout)
        print(f"release: succeeded after {rolled['release_s']:.2f} s, min_healthy "
              f"{rolled['min_healthy']} of {args.replicas} ({rolled['reads']} discovery reads)",
              flush=True)
        # (label, max_surge, max_failures): the old containers stay while the new crash; three
        # go first, so the rollback starts them again; the same, but failed by the deadline
        # (crashes alone would need more than the batch's time).
        variants = [("surge", "25%", None), ("stop-first", 0, None),
                    ("stop-first, deadline", 0, 1000)]
        rollbacks = []
        for label, max_surge, max_failures in variants:
            result = crashing_release(api, berth, poller, engines, first, args.replicas,
                                      args.deadline, max_surge, args.timeout, max_failures)
            result["label"] = label
            rollbacks.append(result)
            print(f"rollback ({label}): failed {result['failed_after_s']:.2f} s after the POST, "
                  f"whole again {result['rollback_s']:.2f} s after failed_at ({result['reason']})",
                  flush=True)
        switch = blue_green(api, berth, poller, first, args.replicas, args.timeout)
        print(f"switch: green ready {switch['green_ready_s']:.2f} s after the POST; discovery "
              f"green-only {switch['switch_s']:.2f} s after the promote", flush=True)
        poller.stop()

        # What the release machine itself allows out at once (Kubernetes' rounding: down).
        plan = rollout.Settings.from_dict(rolled["plan"])
        expected_min = args.replicas - plan.unavailable(args.replicas)
        batches = math.ceil(args.replicas / plan.batch_size(args.replicas))
        raw_s = statistics.median(raws)
        floor_s = batches * raw_s
        rollback_s = max(r["rollback_s"] for r in rollbacks)
        print()
        print(f"command: {command}")
        print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
        print(f"settings: Berth defaults (reconcile every {config.reconcile_interval_s:g} s, probes "
              f"every {config.probe_interval_s:g} s, the deploy task re-checks every 1 s while a "
              f"release runs), Procfile workers (celery x4, probes x2), embedded SQLite database "
              f"and broker; {args.replicas} replicas of busybox httpd (0.1 CPU, 32 MiB), "
              f"healthcheck every 0.5 s, 2 retries; discovery read every {args.poll} s, releases "
              f"polled every {POLL_RELEASE_S} s; load at the end "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print()
        print("| scenario | settings | measured | result | target |")
        print("|---|---|---|---|---|")
        print(f"| release :1 -> :2 | rolling, batch 25%, max_surge 25%, max_unavailable 25% | "
              f"POST -> status succeeded (release_s) | {rolled['release_s']:.2f} s | |")
        print(f"| | | fewest endpoints in discovery, POST -> succeeded (min_healthy) | "
              f"{rolled['min_healthy']} of {args.replicas} ({rolled['reads']} reads) | "
              f">= {expected_min} |")
        print(f"| | | floor: {batches} batches x a raw batch | "
              f"{floor_s:.2f} s (ratio {rolled['release_s'] / floor_s:.2f}) | |")
        for result in rollbacks:
            s = result["settings"]
            extra = f", max_failures {s['max_failures']}" if "max_failures" in s else ""
            print(f"| rollback, {result['label']} | batch 25%, max_surge {s['max_surge']}, "
                  f"max_unavailable 25%, deadline_s {s['deadline_s']:g}{extra}; command "
                  f"`sh -c 'exit 3'` | POST -> progress.failed_at | {result['failed_after_s']:.2f} s | |")
            print(f"| | | failed_at -> {args.replicas} healthy on r{result['from_revision']}, "
                  f"discovery exactly them (rollback_s) | {result['rollback_s']:.2f} s | <= 30 |")
        print(f"| blue-green | switch manual | POST -> green ready (status waiting) | "
              f"{switch['green_ready_s']:.2f} s | |")
        print(f"| | | promote POST -> discovery lists green only (switch_s) | "
              f"{switch['switch_s']:.2f} s | <= 1 |")
        print()
        print(f"raw batch (1 container per engine x 3 engines at once, created, started, healthy; "
              f"median of {len(raws)}): {raw_s:.2f} s ({', '.join(f'{r:.2f}' for r in raws)})")
        print(f"pull of an image already on the engine (registry + token service), 3 x 3 engines: "
              f"median {statistics.median(pulls):.2f} s, max {max(pulls):.2f} s")
        print(f"release: {rolled['reads']} discovery reads from the POST to succeeded; endpoint "
              f"counts seen {rolled['counts']}, fewest at +{rolled['min_at_s']:.2f} s; "
              f"{rolled['changes']} distinct answers; POST answered in {rolled['post_s']:.2f} s; "
              f"finished_at +{rolled['finished_at_s'] or 0:.2f} s; discovery whole on the new "
              f"revision at +{rolled['discovery_whole_s']:.2f} s; {rolled['batches_done']} batches; "
              f"host ports reused by new containers (freed by an earlier batch): {rolled['ports_reused']}")
        print(f"    worker: {fmt_passes(rolled['passes'])}")
        print("    deploy passes, s after the POST [start..end +created -removed]: " + ", ".join(
            f"[{a:.2f}..{b:.2f}" + (" busy]" if busy else f" +{c} -{r}]")
            for a, b, c, r, busy in rolled["passes"]["windows"]))
        for line in rolled["events"]:
            print(f"    {line}")
        print("    engine events per batch, s after the POST (last of the batch's 3; first in ()):")
        for number, span in enumerate(rolled["batch_spans"], 1):
            def at(key):
                return (f"{span[key]:.2f} ({span['first_' + key]:.2f})" if key in span else "-")
            print(f"      batch {number}: new created {at('create')}, started {at('start')}, "
                  f"healthy {at('healthy')}; old destroyed {at('old_destroyed')}")
        for result in rollbacks:
            clean = (f"{result['engine_clean_s']:.2f} s" if result["engine_clean_s"] is not None
                     else "not within 60 s")
            finished = (f"{result['finished_at_s']:.2f} s" if result["finished_at_s"] is not None
                        else "none")
            print(f"rollback, {result['label']}: reason: {result['reason']}; failed_at "
                  f"+{result['failed_after_s']:.2f} s (seen by the poll at "
                  f"+{result['failed_seen_after_s']:.2f} s); after failed_at: whole "
                  f"{result['rollback_s']:.2f} s, status rolled_back seen "
                  f"{result['rolled_back_status_s']:.2f} s, finished_at {finished}, crashed "
                  f"containers gone from the engines {clean} (engines at the end: "
                  f"{result['engine_at_end']}); fewest endpoints in discovery meanwhile "
                  f"{result['min_healthy']}")
            print(f"    worker: {fmt_passes(result['passes'])}")
            for line in result["events"]:
                print(f"    {line}")
        blocking = switch["blocking"]
        blocking_text = (f"blocking query answered {blocking['after_promote_s']:.2f} s after the "
                         f"promote (green only: {blocking['green_only']})" if blocking
                         else f"blocking query: {switch['blocking_error'] or 'no answer'}")
        print(f"switch: promote answered in {switch['promote_post_s']:.2f} s; the first green-only "
              f"read was sent {switch['switch_read_sent_s']:.2f} s and answered {switch['switch_s']:.2f} s "
              f"after the promote; {blocking_text}; release progress switched_at "
              f"+{switch['switched_at_s']:.2f} s; endpoint counts after the promote "
              f"{switch['sequence_after_promote']} (a mix of blue and green: {switch['mixed']}); "
              f"fewest blue endpoints while green started {switch['green_min_blue']}; "
              f"retiring blue (second promote) to succeeded {switch['retire_s']:.2f} s")
        print(f"    worker: {fmt_passes(switch['passes'])}")
        for line in switch["events"]:
            print(f"    {line}")
        if poller.errors:
            print(f"discovery read errors: {len(poller.errors)}, e.g. {poller.errors[0]}")

        summary = {
            "release_finished_at_s": round(rolled["finished_at_s"] or 0, 3),
            "release_discovery_whole_s": round(rolled["discovery_whole_s"], 3),
            "release_reads": rolled["reads"], "release_settings": rolled["settings"],
            "release_passes": rolled["passes"]["deploy_passes"],
            "raw_batch_s": round(raw_s, 3), "pull_present_s": round(statistics.median(pulls), 3), "release_floor_s": round(floor_s, 3),
            "release_ratio_to_floor": round(rolled["release_s"] / floor_s, 3),
            "rollbacks": {r["label"]: {"rollback_s": round(r["rollback_s"], 3),
                                       "failed_after_s": round(r["failed_after_s"], 3),
                                       "reason": r["reason"], "min_healthy": r["min_healthy"]}
                          for r in rollbacks},
            "rollback_measured_from": "progress.failed_at",
            "rollback_deadline_s": args.deadline,
            "switch_blocking_s": round(blocking["after_promote_s"], 3) if blocking else None,
            "green_ready_s": round(switch["green_ready_s"], 3),
            "switch_mixed": switch["mixed"],
            "deploy_s": round(deploy_s, 3),
            "discovery_read_errors": len(poller.errors),
            "nproc": facts["nproc"], "loadavg_start": [round(x, 2) for x in facts["loadavg_start"]],
            "replicas": args.replicas, "min_healthy": rolled["min_healthy"],
            "expected_min_healthy": expected_min, "release_s": round(rolled["release_s"], 3),
            "rollback_s": round(rollback_s, 3), "switch_s": round(switch["switch_s"], 3),
        }
        print(json.dumps(summary))
        return 0
    finally:
        try:
            if poller is not None:
                poller.stop()
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
