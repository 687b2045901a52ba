"""The reconcile core on real engines: a worker killed while its pass holds the lease, a
control plane that loses every heartbeat at once, and applications whose container names
would once have collided."""
from __future__ import annotations

import signal
import subprocess

import requests
from sqlalchemy import select

from berth import db
from berth.models import Application
from tests.integration.apps import (
    all_healthy, app_state, containers, http_service, port_of, states, tear_down,
)
from tests.support import REPOSITORY, wait_for


TARGET = 20


def lease_owner(name: str) -> str | None:
    db.session.rollback()  # a fresh read each time
    return db.session.scalar(select(Application.reconcile_lease_owner).where(Application.name == name))


def test_a_worker_killed_while_its_pass_holds_the_lease_ends_with_exactly_the_desired(
        berth_app, bed, fleet, database):
    # Twenty containers take the engines seconds to create and start (about 6 a second on
    # two cores): a wide window. Each keeps a tenth of a core and checks its health once a
    # second with room to answer, so the twenty stay healthy on two loaded cores (at 0.01 CPU
    # and two checks a second they timed out, and Berth rightly kept replacing them).
    service = http_service("web", bed.image, 1, memory=16 * 2**20)
    service["healthcheck"].update(interval_s=1, timeout_s=5, retries=3)
    spec = {"name": "lease", "services": [service]}
    assert berth_app.api("POST", "/api/v1/applications", json=spec).status_code == 201
    wait_for(lambda: all_healthy(berth_app, "lease", {"web": 1}), 120, "one healthy web")
    assert berth_app.api("PATCH", "/api/v1/applications/lease/services/web",
                         json={"replicas": TARGET}).status_code == 200

    def mid_pass():  # new containers exist, some not yet running, and a pass holds the lease
        if not lease_owner("lease"):
            return False
        made = states(bed, "lease")
        return len(made) > 2 and made.count("running") < TARGET
    wait_for(mid_pass, 60, "a pass to hold the lease half-way through the scale-up", interval_s=0.01)
    workers = berth_app.kill_workers(signal.SIGKILL)
    assert lease_owner("lease") is not None  # the dead pass still holds it, until it lapses
    berth_app.start_workers(workers)

    wait_for(lambda: all_healthy(berth_app, "lease", {"web": TARGET}) and
             len(containers(bed, "lease", status=None)) == TARGET, 180,
             f"exactly {TARGET} healthy web")
    running = containers(bed, "lease")
    assert len({c.name for _, c in running}) == TARGET
    ports = sorted(port_of(c) for _, c in running)
    assert len(set(ports)) == TARGET  # no port handed out twice
    web = app_state(berth_app, "lease")["web"]
    assert sorted(web["endpoints"]) == sorted(f"127.0.0.1:{p}" for p in ports)
    assert sorted(str(i["host_port"]) for i in web["instances"] if i["state"] == "running") == ports
    for endpoint in web["endpoints"]:
        assert requests.get(f"http://{endpoint}/", timeout=5).text.strip() == "web"
    tear_down(berth_app, "lease")


def reconcile_now(berth_app) -> None:
    """Send one reconcile round to the workers, as beat would."""
    subprocess.run([str(berth_app.bin / "celery"), "-A", "berth.worker", "call",
                    "berth.workloads.tasks.reconcile_all"], cwd=REPOSITORY, env=berth_app.env,
                   check=True, capture_output=True, timeout=60)


def test_when_every_heartbeat_goes_stale_at_once_nothing_is_evicted(berth_app, bed, fleet):
    spec = {"name": "calm", "services": [http_service("api", bed.image, 3)]}
    assert berth_app.api("POST", "/api/v1/applications", json=spec).status_code == 201
    wait_for(lambda: all_healthy(berth_app, "calm", {"api": 3}), 120, "three healthy api")
    before = sorted(c.id for _, c in containers(bed, "calm"))
    endpoints = app_state(berth_app, "calm")["api"]["endpoints"]

    berth_app.stop("beat")  # no more probes: every heartbeat goes stale together
    try:
        stale_s = 3 * berth_app.config.probe_interval_s

        def paused():
            reconcile_now(berth_app)
            return "not evicting" in (app_state(berth_app, "calm")["api"]["status_detail"] or "")
        wait_for(paused, stale_s + 60, "a round to pause evictions", interval_s=1)
        api = app_state(berth_app, "calm")["api"]
        assert api["status_detail"].startswith("not evicting: 3 of 3 hosts look down at once")
        assert api["endpoints"] == endpoints
        assert sorted(i["state"] for i in api["instances"]) == ["running"] * 3
        assert sorted(c.id for _, c in containers(bed, "calm")) == before
    finally:
        berth_app.start_beat()
    wait_for(lambda: (s := app_state(berth_app, "calm")["api"])["status"] == "healthy"
             and s["status_detail"] is None, 60, "the pause to lift once probes return")
    assert sorted(c.id for _, c in containers(bed, "calm")) == before  # nothing was replaced
    tear_down(berth_app, "calm")


def test_applications_whose_old_names_collided_run_side_by_side(berth_app, bed, fleet):
    """shop2 + api-x and shop2-api + x were both shop2-api-x-1-0 once."""
    for app, service in (("shop2", "api-x"), ("shop2-api", "x")):
        spec = {"name": app, "services": [http_service(service, bed.image, 1)]}
        assert berth_app.api("POST", "/api/v1/applications", json=spec).status_code == 201
    wait_for(lambda: all_healthy(berth_app, "shop2", {"api-x": 1})
             and all_healthy(berth_app, "shop2-api", {"x": 1}), 120, "both to be healthy")
    [(_, theirs)] = containers(bed, "shop2-api")
    [(_, ours)] = containers(bed, "shop2")
    assert {ours.name, theirs.name} == {"shop2_api-x_1_0", "shop2-api_x_1_0"}

    assert berth_app.api("PATCH", "/api/v1/applications/shop2/services/api-x",
                         json={"replicas": 0}).status_code == 200
    wait_for(lambda: not containers(bed, "shop2", status=None), 60, "shop2's container to go")
    [(_, still)] = containers(bed, "shop2-api")
    assert still.id == theirs.id and still.status == "running"
    for app in ("shop2", "shop2-api"):
        tear_down(berth_app, app)
