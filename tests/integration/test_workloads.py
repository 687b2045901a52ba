"""Applications on the real engines: dependency order, discovery, healing, a worker killed
mid-deploy. Services answer HTTP with busybox httpd on ports Berth allocates (host network,
127.0.0.1 only)."""
from __future__ import annotations

import time

import docker
import pytest
import requests

from berth.engine import LABEL_APPLICATION, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_SERVICE
from tests import nginx_runner
from tests.integration.apps import (
    all_healthy, app_state, containers, http_service, port_of, tear_down,
)
from tests.support import wait_for


@pytest.fixture(scope="module")
def shop(berth_app, bed, fleet):
    spec = {"name": "shop", "services": [
        http_service("db", bed.image, 1),
        http_service("api", bed.image, 2, {"db": "healthy"}),
        http_service("web", bed.image, 2, {"api": "healthy"}),
    ]}
    response = berth_app.api("POST", "/api/v1/applications", json=spec)
    assert response.status_code == 201, response.text
    wait_for(lambda: all_healthy(berth_app, "shop", {"db": 1, "api": 2, "web": 2}), 180,
             "db, api and web to be healthy")
    return "shop"


def test_deploys_in_dependency_order_across_engines(berth_app, bed, shop):
    events = berth_app.api("GET", "/api/v1/audit", params={"limit": 1000}).json()
    first = {}
    for event in reversed(events):  # oldest first
        first.setdefault((event["kind"], event["subject"]), event["id"])
    assert first[("service.healthy", "shop/db")] < first[("instance.create", "shop/api")]
    assert first[("service.healthy", "shop/api")] < first[("instance.create", "shop/web")]
    engines = {engine for engine, _ in containers(bed, "shop")}
    assert len(engines) >= 2, f"all containers on {engines}"


def test_discovery_lists_exactly_the_healthy_instances(berth_app, bed, shop):
    state = app_state(berth_app, "shop")["api"]
    expected = sorted(f"127.0.0.1:{i['host_port']}" for i in state["instances"]
                      if i["state"] == "running" and i["health"] == "healthy")
    found = berth_app.api("GET", "/api/v1/applications/shop/services/api/endpoints").json()
    assert sorted(found["endpoints"]) == expected and len(expected) == 2
    for endpoint in found["endpoints"]:
        assert requests.get(f"http://{endpoint}/", timeout=5).text.strip() == "api"


def test_nginx_proxies_to_the_rendered_upstream(berth_app, shop, tmp_path):
    response = berth_app.api("GET", "/api/v1/applications/shop/services/api/upstream")
    assert response.status_code == 200 and response.headers["X-Berth-Index"]
    assert response.text.count("server 127.0.0.1:") == 2
    port = nginx_runner.free_port()
    site = (f"server {{ listen 127.0.0.1:{port}; "
            f"location / {{ proxy_pass http://shop-api; }} }}")
    with nginx_runner.running(tmp_path, response.text + site, port) as url:
        answers = [requests.get(url, timeout=5) for _ in range(4)]
    assert [(a.status_code, a.text.strip()) for a in answers] == [(200, "api")] * 4


def test_blocking_query_returns_when_endpoints_change(berth_app, bed, shop):
    path = "/api/v1/applications/shop/services/web/endpoints"
    before = berth_app.api("GET", path).json()
    engine, victim = containers(bed, "shop", "web")[0]
    victim.kill()
    changed = berth_app.api("GET", path, params={"index": before["index"], "wait": 30}).json()
    assert changed["index"] > before["index"]
    assert f"127.0.0.1:{port_of(victim)}" not in changed["endpoints"]


def test_a_killed_container_is_replaced(berth_app, bed, shop):
    engine, victim = containers(bed, "shop", "api")[0]
    victim.kill()
    wait_for(lambda: all_healthy(berth_app, "shop", {"api": 2}) and
             len(containers(bed, "shop", "api")) == 2, 60, "api to be whole again")


def test_a_stopped_engine_is_replaced_by_the_others(berth_app, bed, shop):
    victim_engine = containers(bed, "shop", "api")[0][0]
    bed.stop_engine(victim_engine, kill=True)
    try:
        wait_for(lambda: all_healthy(berth_app, "shop", {"db": 1, "api": 2, "web": 2}) and
                 all(engine != victim_engine for engine, _ in containers(bed, "shop")),
                 120, f"the services to be whole without {victim_engine}")
    finally:
        bed.start_engine(victim_engine)
    # The old containers come back exited with their engine; the reconciler clears twins.
    wait_for(lambda: len(containers(bed, "shop")) == 5 and not containers(bed, "shop", status="exited")
             and all_healthy(berth_app, "shop", {"db": 1, "api": 2, "web": 2}), 120,
             "exactly the desired containers after the engine returns")


def test_worker_killed_mid_deploy_ends_with_exactly_the_desired_count(berth_app, bed, shop):
    assert berth_app.api("PATCH", "/api/v1/applications/shop/services/web",
                         json={"replicas": 6}).status_code == 200
    wait_for(lambda: len(containers(bed, "shop", "web")) > 2, 60, "the scale-up to begin")
    # Every worker, so that whichever runs the pass dies mid-deploy.
    berth_app.start_workers(berth_app.kill_workers())
    wait_for(lambda: all_healthy(berth_app, "shop", {"web": 6}) and
             len(containers(bed, "shop", "web")) == 6, 120, "exactly six web containers")
    names = [c.name for _, c in containers(bed, "shop", "web")]
    assert len(set(names)) == 6


def test_unknown_input_is_refused_before_anything_starts(berth_app, bed):
    cyclic = {"name": "loop", "services": [
        {"name": "a", "image": bed.image, "depends_on": {"b": "started"}},
        {"name": "b", "image": bed.image, "depends_on": {"a": "started"}}]}
    response = berth_app.api("POST", "/api/v1/applications", json=cyclic)
    assert response.status_code == 400 and "a -> b -> a" in response.json()["error"]
    missing = {"name": "lonely", "services": [
        {"name": "a", "image": bed.image, "depends_on": {"ghost": "healthy"}}]}
    response = berth_app.api("POST", "/api/v1/applications", json=missing)
    assert response.status_code == 400 and "ghost" in response.json()["error"]
    no_such_tag = {"name": "typo", "services": [
        {"name": "a", "image": bed.image.rsplit(":", 1)[0] + ":no-such-tag"}]}
    response = berth_app.api("POST", "/api/v1/applications", json=no_such_tag)
    assert response.status_code == 400 and "no-such-tag" in response.json()["error"]
    for name in ("loop", "lonely", "typo"):
        assert berth_app.api("GET", f"/api/v1/applications/{name}").status_code == 404


def test_a_dependency_that_never_gets_healthy_fails_its_dependents_visibly(berth_app, bed):
    sick_db = {**http_service("db", bed.image, 1),
               "healthcheck": {"test": ["CMD", "false"], "interval_s": 0.5, "retries": 1}}
    spec = {"name": "sick", "services": [sick_db, http_service("api", bed.image, 1, {"db": "healthy"})]}
    assert berth_app.api("POST", "/api/v1/applications", json=spec).status_code == 201
    def api_when(status):
        api = app_state(berth_app, "sick")["api"]
        return api if api["status"] == status else None
    api = wait_for(lambda: api_when("waiting"), 60, "api to wait for db")
    assert api["status_detail"] == "waiting for db (healthy)"
    api = wait_for(lambda: api_when("failed"), 90, "api to give up on db")
    assert api["status_detail"] == "gave up after 30 s waiting for db (healthy)"
    assert containers(bed, "sick", "api", status="running") == []
    tear_down(berth_app, "sick")


def test_the_autoscaler_adds_replicas_to_a_busy_service(berth_app, bed, fleet):
    """A busy loop inside a 0.05 CPU limit is 100% of its limit: twice the 50% target."""
    burner = {"name": "burn", "image": bed.image, "replicas": 1, "cpus": 0.05,
              "memory": 16 * 2**20, "command": ["sh", "-c", "while :; do :; done"]}
    assert berth_app.api("POST", "/api/v1/applications",
                         json={"name": "hot", "services": [burner]}).status_code == 201
    path = "/api/v1/applications/hot/services/burn/autoscaling"
    policy = {"min_replicas": 1, "max_replicas": 3, "target_cpu_percent": 50, "cooldown_s": 0}
    assert berth_app.api("PUT", path, json=policy).status_code == 200
    wait_for(lambda: len(containers(bed, "hot", "burn")) == 3, 120,
             "the autoscaler to scale burn to its maximum of 3")
    scaled = berth_app.api("GET", "/api/v1/audit", params={"kind": "service.scale",
                                                          "actor": "autoscaler"}).json()
    assert scaled and "of limit > target 50%" in scaled[-1]["message"], scaled
    wait_for(lambda: "already at maximum 3" in (berth_app.api("GET", path).json()["last_decision"]
                                                 or ""), 30, "the next decision to hold at 3")
    tear_down(berth_app, "hot")


def test_orphans_of_this_installation_are_swept_and_nothing_else(berth_app, bed, fleet):
    client = bed.docker_client("e1")
    labels = {LABEL_MANAGED: "1", LABEL_APPLICATION: "ghost"}
    try:
        client.containers.run(bed.image, ["sleep", "600"], detach=True, network_mode="none",
                              name="ghost-s-1-0", labels={
                                  **labels, LABEL_INSTALLATION: berth_app.config.installation_id})
        foreign = client.containers.run(bed.image, ["sleep", "600"], detach=True, network_mode="none",
                                        name="ghost-foreign", labels=labels)
        wait_for(lambda: [c.name for _, c in containers(bed, "ghost")] == ["ghost-foreign"], 30,
                 "the orphan to be swept")
        foreign.reload()
        assert foreign.status == "running"  # no installation label: not Berth's to sweep
        def swept_event():  # recorded after the removal, in its own step
            events = berth_app.api("GET", "/api/v1/audit", params={"kind": "instance.orphan"}).json()
            return any("ghost-s-1-0" in e["message"] for e in events)
        wait_for(swept_event, 30, "the sweep's event")
    finally:
        for name in ("ghost-s-1-0", "ghost-foreign"):
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        client.close()


def test_teardown_stops_dependents_first_and_leaves_nothing(berth_app, bed, shop):
    since = time.time()
    tear_down(berth_app, "shop")
    until = time.time() + 1
    assert containers(bed, "shop", status="running") == []
    assert containers(bed, "shop", status="exited") == []
    destroyed = []  # (when, service) of every container the engines destroyed, all engines
    for engine in bed.state["engines"]:
        client = bed.docker_client(engine["name"])
        try:
            for event in client.events(since=int(since), until=int(until), decode=True, filters={
                    "type": "container", "event": "destroy", "label": f"{LABEL_APPLICATION}=shop"}):
                if event["timeNano"] >= since * 1e9:  # `since` is whole seconds on the wire
                    destroyed.append((event["timeNano"], event["Actor"]["Attributes"][LABEL_SERVICE]))
        finally:
            client.close()
    order = [service for _, service in sorted(destroyed)]
    assert set(order) == {"web", "api", "db"}, order
    last = {service: max(i for i, s in enumerate(order) if s == service) for service in set(order)}
    first = {service: order.index(service) for service in set(order)}
    assert last["web"] < first["api"] and last["api"] < first["db"], order
    events = berth_app.api("GET", "/api/v1/audit", params={"subject": "shop"}).json()
    assert events[0]["kind"] == "application.delete"
