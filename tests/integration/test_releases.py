"""Releases on the test bed's real engines and registry, one test per strategy: rolling
(discovery polled throughout), a crashing revision rolled back by itself, canary analysis on
real container logs, blue-green switch and switch-back, stages across pools and IDCs, and a
worker killed with -9 in the middle of a rolling release."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from berth.engine import LABEL_REVISION, LABEL_SLOT
from tests.integration.apps import (
    all_healthy, app_state, containers, http_service, port_of, tear_down,
)
from tests.support import wait_for

ENDED = ("succeeded", "rolled_back", "failed")


def next_image(bed) -> str:
    """The test bed pushes its image as :1 and as :2 (another label, another digest)."""
    repository, _ = bed.image.rsplit(":", 1)
    return f"{repository}:2"


def deploy(berth_app, name, service, replicas):
    response = berth_app.api("POST", "/api/v1/applications", json={"name": name, "services": [service]})
    assert response.status_code == 201, response.text
    wait_for(lambda: all_healthy(berth_app, name, {service["name"]: replicas}), 180,
             f"{name} to be healthy with {replicas} replicas")


def start_release(berth_app, app, service, **body):
    response = berth_app.api("POST", f"/api/v1/applications/{app}/services/{service}/releases", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def release_of(berth_app, app, service, release_id) -> dict:
    response = berth_app.api("GET", f"/api/v1/applications/{app}/services/{service}/releases/{release_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_release(berth_app, app, service, release_id, statuses, timeout_s=180, phase=None) -> dict:
    def reached():
        found = release_of(berth_app, app, service, release_id)
        if found["status"] in ENDED and found["status"] not in statuses:
            raise AssertionError(f"release ended {found['status']}: {found['detail']}")
        return found["status"] in statuses and (
            phase is None or found["progress"].get("phase") == phase) and found
    return wait_for(reached, timeout_s, f"release {release_id} of {app}/{service} to be {statuses}",
                    interval_s=0.2)


def act(berth_app, app, service, release_id, action) -> dict:
    response = berth_app.api("POST", f"/api/v1/applications/{app}/services/{service}/releases/"
                                     f"{release_id}/{action}")
    assert response.status_code == 200, response.text
    return response.json()


def endpoints(berth_app, app, service) -> list[str]:
    response = berth_app.api("GET", f"/api/v1/applications/{app}/services/{service}/endpoints")
    assert response.status_code == 200, response.text
    return sorted(response.json()["endpoints"])


class DiscoveryPoller:
    """Reads the discovery API over and over in a thread (bounded in count and time) and keeps
    every distinct answer in order, with the smallest count seen."""

    def __init__(self, berth_app, app, service, limit_s=240.0, max_reads=20000):
        self.args, self.limit_s, self.max_reads = (berth_app, app, service), limit_s, max_reads
        self.seen: list[tuple[str, ...]] = []
        self.reads, self.smallest = 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        wait_for(lambda: self.reads > 0, 30, "the discovery poller's first read")
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)

    def _run(self):
        deadline = time.monotonic() + self.limit_s
        while not self._stop.is_set() and self.reads < self.max_reads and time.monotonic() < deadline:
            current = tuple(endpoints(*self.args))
            self.reads += 1
            self.smallest = len(current) if self.smallest is None else min(self.smallest, len(current))
            if not self.seen or self.seen[-1] != current:
                self.seen.append(current)
            self._stop.wait(0.02)


def revisions_running(berth_app, app, service) -> list[int]:
    return sorted(i["revision"] for i in app_state(berth_app, app)[service]["instances"]
                  if i["state"] == "running")


def served_by(bed, app, service) -> list[str]:
    """The endpoints of the containers running on the engines (ports are reused: a new
    container may get the port an old one gave back)."""
    return sorted(f"127.0.0.1:{port_of(c)}" for _, c in containers(bed, app, service))


def engine_images(bed, app, service) -> list[str]:
    return sorted(c.attrs["Config"]["Image"] for _, c in containers(bed, app, service))


def audit(berth_app, kind, subject) -> list[dict]:
    response = berth_app.api("GET", "/api/v1/audit", params={"kind": kind, "subject": subject,
                                                             "limit": 1000})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()))  # oldest first


def _at(text: str) -> datetime:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


@pytest.mark.berth_environments("postgres-redis")
def test_rolling_release_keeps_discovery_above_the_floor(berth_app, bed, fleet):
    deploy(berth_app, "roll", http_service("web", bed.image, 3), 3)
    before = endpoints(berth_app, "roll", "web")
    with DiscoveryPoller(berth_app, "roll", "web") as poller:
        # Defaults: batches, surge and unavailability of 25%: of 3, one surges, none may go.
        release = start_release(berth_app, "roll", "web", changes={"image": next_image(bed)})
        done = wait_release(berth_app, "roll", "web", release, ("succeeded",))
    assert done["plan"]["max_unavailable"] == "25%"
    expected_floor = 3 - 0  # 25% of 3, rounded down
    assert poller.reads > 20 and poller.smallest >= expected_floor, (poller.reads, poller.seen)
    assert poller.seen[0] == tuple(before)
    assert engine_images(bed, "roll", "web") == [next_image(bed)] * 3
    assert endpoints(berth_app, "roll", "web") == served_by(bed, "roll", "web")
    assert revisions_running(berth_app, "roll", "web") == [2, 2, 2]
    assert app_state(berth_app, "roll")["web"]["revision"] == 2
    tear_down(berth_app, "roll")


@pytest.mark.berth_environments("embedded")
def test_a_crashing_revision_rolls_back_by_itself_and_says_why(berth_app, bed, fleet):
    deploy(berth_app, "crash", http_service("web", bed.image, 2), 2)
    old_endpoints = endpoints(berth_app, "crash", "web")
    missing = berth_app.api("POST", "/api/v1/applications/crash/services/web/releases",
                            json={"changes": {"image": bed.image.rsplit(":", 1)[0] + ":no-such-tag"}})
    assert missing.status_code in (400, 404, 422) and "no-such-tag" in missing.text, missing.text
    assert berth_app.api("GET", "/api/v1/applications/crash/services/web/releases").json() == []
    release = start_release(berth_app, "crash", "web", deadline_s=60, changes={
        "image": next_image(bed), "command": ["sh", "-c", "echo starting; exit 3"]})
    ended = wait_release(berth_app, "crash", "web", release, ("rolled_back",))
    assert "rolled back" in ended["detail"], ended
    assert "exited with code 3" in ended["progress"]["reason"], ended["progress"]
    wait_for(lambda: all_healthy(berth_app, "crash", {"web": 2}), 60, "crash/web whole on revision 1")
    assert revisions_running(berth_app, "crash", "web") == [1, 1]
    assert engine_images(bed, "crash", "web") == [bed.image] * 2
    assert app_state(berth_app, "crash")["web"]["revision"] == 1
    assert len(endpoints(berth_app, "crash", "web")) == 2
    events = [e["kind"] for e in audit(berth_app, "release.", "crash/web")]
    assert "release.rollback" in events and "release.rolled_back" in events, events
    assert old_endpoints  # the old set served before, and a whole set serves after
    tear_down(berth_app, "crash")


LOGS_ERRORS = ("mkdir -p /www && echo canary > /www/index.html"
               " && { while true; do echo 'ERROR payment failed'; sleep 0.1; done & }"
               " && exec httpd -f -p 127.0.0.1:$PORT -h /www")


@pytest.mark.berth_environments("embedded")
def test_canary_logging_errors_is_rolled_back_and_a_clean_one_is_promoted(berth_app, bed, fleet):
    deploy(berth_app, "canary", http_service("web", bed.image, 4), 4)
    bad = start_release(berth_app, "canary", "web", strategy="canary", canary_count=2,
                        analysis_s=8, changes={"image": next_image(bed),
                                               "command": ["sh", "-c", LOGS_ERRORS]})
    ended = wait_release(berth_app, "canary", "web", bad, ("rolled_back",))
    reason = ended["progress"]["reason"]
    assert "canary analysis failed" in reason and "error" in reason, reason
    wait_for(lambda: all_healthy(berth_app, "canary", {"web": 4}) and
             revisions_running(berth_app, "canary", "web") == [1] * 4, 60, "the baseline alone again")

    clean = start_release(berth_app, "canary", "web", strategy="canary", canary_count=2,
                          analysis_s=6, changes={"image": next_image(bed)})
    waiting = wait_release(berth_app, "canary", "web", clean, ("waiting",))
    assert sorted(revisions_running(berth_app, "canary", "web")) == [1, 1, 3, 3]
    assert waiting["analysis"], waiting  # the figures against the baseline are shown
    act(berth_app, "canary", "web", clean, "promote")
    wait_release(berth_app, "canary", "web", clean, ("succeeded",))
    assert revisions_running(berth_app, "canary", "web") == [3] * 4
    assert engine_images(bed, "canary", "web") == [next_image(bed)] * 4
    tear_down(berth_app, "canary")


@pytest.mark.berth_environments("embedded")
def test_blue_green_switches_in_one_step_and_back_without_starting_containers(berth_app, bed, fleet):
    deploy(berth_app, "bg", http_service("web", bed.image, 2), 2)
    blue = tuple(endpoints(berth_app, "bg", "web"))
    with DiscoveryPoller(berth_app, "bg", "web") as poller:
        release = start_release(berth_app, "bg", "web", strategy="blue_green",
                                changes={"image": next_image(bed)})
        wait_release(berth_app, "bg", "web", release, ("waiting",), phase="switched")
        green = tuple(endpoints(berth_app, "bg", "web"))
    assert len(green) == 2 and not set(green) & set(blue)  # both sets run: no port is shared
    assert poller.seen == [blue, green], poller.seen  # one step: never a mix, never fewer
    ids_switched = {c.id for _, c in containers(bed, "bg", "web")}
    assert len(ids_switched) == 4  # blue kept idle beside green

    with DiscoveryPoller(berth_app, "bg", "web") as poller:
        act(berth_app, "bg", "web", release, "rollback")
        wait_release(berth_app, "bg", "web", release, ("rolled_back",))
        wait_for(lambda: tuple(endpoints(berth_app, "bg", "web")) == blue, 30, "discovery back on blue")
    assert poller.seen[0] == green and poller.seen[-1] == blue and len(poller.seen) == 2, poller.seen
    running_now = {c.id for _, c in containers(bed, "bg", "web", status=None)}
    assert running_now <= ids_switched  # nothing was started for the switch-back
    wait_for(lambda: len(containers(bed, "bg", "web", status=None)) == 2, 60, "green retired")
    assert revisions_running(berth_app, "bg", "web") == [1, 1]
    tear_down(berth_app, "bg")


@pytest.fixture
def two_pools_two_idcs(berth_app, fleet, database):
    """e1: pool edge in IDC tucheng; e2: pool core in tucheng; e3: pool core in yongfeng;
    given back to p1 / default afterwards."""
    from berth import db
    from berth.hosts import services
    from berth.models import Host

    places = {"e1": ("edge", "tucheng"), "e2": ("core", "tucheng"), "e3": ("core", "yongfeng")}
    names = sorted(fleet)
    assert len(names) == 3, names

    def move(to):
        with db.unit_of_work():
            for engine, (pool, idc) in to.items():
                host = db.session.get(Host, fleet[engine])
                host.pool = services.get_or_create_pool("testbed", pool)
                services.update_host(host, idc=idc, actor="test")

    move({engine: places[key] for engine, key in zip(names, ("e1", "e2", "e3"))})
    yield {key: engine for engine, key in zip(names, ("e1", "e2", "e3"))}
    move({engine: ("p1", "default") for engine in names})


@pytest.mark.berth_environments("embedded")
def test_the_second_stage_waits_for_the_first_stages_observation(berth_app, bed, two_pools_two_idcs):
    engines = two_pools_two_idcs
    service = http_service("web", bed.image, 6)
    deploy(berth_app, "staged", service, 6)
    spread = {engine: 0 for engine in engines.values()}
    for engine, _ in containers(bed, "staged", "web"):
        spread[engine] += 1
    assert all(spread.values()), f"placement left a stage empty: {spread}"
    observe_s = 8
    release = start_release(berth_app, "staged", "web", observe_s=observe_s, changes={
        "image": next_image(bed)}, stages=[{"pools": ["edge"]}, {"pools": ["core"], "idc": "tucheng"},
                                           {"pools": ["core"], "idc": "yongfeng"}])
    wait_release(berth_app, "staged", "web", release, ("succeeded",), timeout_s=300)

    stage_events = audit(berth_app, "release.stage", "staged/web")  # its only release
    done_1 = next(_at(e["at"]) for e in stage_events if "stage 1 of 3 done" in e["message"])
    started_2 = next(_at(e["at"]) for e in stage_events if "stage 2 of 3 started" in e["message"])
    assert (started_2 - done_1).total_seconds() >= observe_s - 0.5, stage_events

    created = {}
    for engine, container in containers(bed, "staged", "web"):
        assert container.labels[LABEL_REVISION] == "2"
        created.setdefault(engine, []).append(_at(container.attrs["Created"][:26] + "+00:00"))
    assert sorted(len(v) for v in created.values()) == sorted(spread.values())  # each host's moved
    # Each stage's new containers on its own hosts (by the docker engines' own clocks): a
    # stage's first begins only after the previous stage's last was created and watched.
    watch = timedelta(seconds=observe_s)
    for earlier, later in (("e1", "e2"), ("e2", "e3")):
        assert min(created[engines[later]]) >= max(created[engines[earlier]]) + watch, created
    tear_down(berth_app, "staged")


def test_worker_killed_mid_rolling_release_resumes_with_exactly_the_desired_containers(berth_app, bed, fleet):
    deploy(berth_app, "resume", http_service("web", bed.image, 4), 4)
    release = start_release(berth_app, "resume", "web", batch=1, pause_s=1,
                            changes={"image": next_image(bed)})
    wait_for(lambda: 0 < revisions_running(berth_app, "resume", "web").count(2) < 4, 120,
             "the release to be part-way")
    berth_app.start_workers(berth_app.kill_workers())
    done = wait_release(berth_app, "resume", "web", release, ("succeeded",), timeout_s=240)
    assert done["to_revision"] == 2
    wait_for(lambda: all_healthy(berth_app, "resume", {"web": 4}), 60, "resume/web healthy")
    running = containers(bed, "resume", "web")
    assert len(running) == 4 and not containers(bed, "resume", "web", status="exited")
    assert engine_images(bed, "resume", "web") == [next_image(bed)] * 4
    assert len({c.labels[LABEL_SLOT] for _, c in running}) == 4  # one container per slot
    tear_down(berth_app, "resume")
