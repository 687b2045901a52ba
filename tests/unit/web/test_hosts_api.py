"""The hosts API contract: add (engine checked first), read, filter, patch; admins change."""
from __future__ import annotations


import pytest
from sqlalchemy import select

from berth import db
from berth.clock import utcnow
from berth.engine.fake import FakeEngine
from berth.models import Event, Host
from tests.support import basic_auth, make_tls

LIVE_HOST = "tcp://10.0.0.5:"  # any port on it answers (one host record per engine)
LIVE = LIVE_HOST + "2376"
DEAD = "tcp://10.0.0.9:2376"
OLGA = basic_auth("olga", "olga-password")
NEW = {"name": "web-01", "endpoint": LIVE, "cluster": "web", "pool": "p1", "idc": "bj",
       "labels": {"disk": "ssd"}, "disk_type": "nvme", "disk_gb": 800}


@pytest.fixture
def api(app, client, admin):
    """An admin and olga (not an admin); engines answer at LIVE only."""
    engine = FakeEngine(cpus=16, memory=32 * 2**30)
    app.config["BERTH_ENGINE_CONNECT"] = lambda endpoint: (
        engine if endpoint.url.startswith(LIVE_HOST) else FakeEngine(alive=False))
    assert client.post("/api/v1/users", json={"username": "olga", "password": "olga-password"},
                       headers=admin).status_code == 201
    client.admin = admin
    return client


def host_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Host)).all())


def test_admin_adds_a_host_with_hardware_from_the_engine(api, app):
    response = api.post("/api/v1/hosts", json=NEW, headers=api.admin)
    assert response.status_code == 201, response.json
    host = response.json
    assert (host["cpus"], host["memory"], host["kernel"]) == (16.0, 32 * 2**30, "fake")
    assert (host["cluster"], host["pool"], host["idc"], host["labels"]) == (
        "web", "p1", "bj", {"disk": "ssd"})
    # the engine answered when it was added: up at once, not after the next probe
    assert (host["liveness"], host["alive"], host["uses_tls"]) == ("up", True, False)
    assert (host["port_range_start"], host["port_range_end"]) == (20000, 29999)
    again = api.get(f"/api/v1/hosts/{host['id']}", headers=OLGA).json
    assert {**again, "heartbeat_age_s": None} == {**host, "heartbeat_age_s": None}  # it ages
    with app.app_context():
        assert db.session.scalar(select(Event.actor).where(Event.kind == "host.add")) == "admin"


@pytest.mark.parametrize("changes, status, fragment", [
    ({"endpoint": DEAD}, 400, f"the engine at {DEAD} did not answer"),
    ({"endpoint": "http://x:2375"}, 400, "must start with unix:// or tcp://"),
    ({"labels": {"disk": "s s"}}, 400, "label disk: value"),
    ({"labels": {"-x": "1"}}, 400, "label key '-x'"),
    ({"labels": ["disk=ssd"]}, 400, "labels"),
    ({"tls": {"ca": "x"}}, 400, "missing: client certificate, client key"),
    ({"tls": {"ca": "x", "cert": "y", "key": "z"}}, 400, "the CA certificate must be PEM"),
    ({"disk_type": "tape"}, 400, "disk_type"),
    ({"port_range_start": 30000, "port_range_end": 20000}, 400, "port range"),
    ({"name": "has space"}, 400, "a host name is"),
    ({"surprise": 1}, 400, "surprise"),
])
def test_bad_input_is_a_400_and_saves_nothing(api, app, changes, status, fragment):
    response = api.post("/api/v1/hosts", json={**NEW, **changes}, headers=api.admin)
    assert response.status_code == status and fragment in response.json["error"], response.json
    assert host_count(app) == 0


def test_duplicate_name_is_a_409(api, app):
    assert api.post("/api/v1/hosts", json=NEW, headers=api.admin).status_code == 201
    response = api.post("/api/v1/hosts", json={**NEW, "idc": "sh"}, headers=api.admin)
    assert response.status_code == 409 and "already exists" in response.json["error"]
    assert host_count(app) == 1


def test_tls_material_is_stored_but_never_returned(api, app):
    tls = make_tls()
    created = api.post("/api/v1/hosts", json={**NEW, "tls": tls}, headers=api.admin)
    assert created.status_code == 201 and created.json["uses_tls"] is True
    secret = "".join(tls["key"].splitlines()[1:-1])
    for response in (created, api.get("/api/v1/hosts", headers=api.admin),
                     api.get("/api/v1/hosts/1", headers=api.admin),
                     api.patch("/api/v1/hosts/1", json={"idc": "sh"}, headers=api.admin)):
        assert secret not in response.text and "PRIVATE KEY" not in response.text
        assert not any(k.startswith("tls") for k in
                       (response.json[0] if isinstance(response.json, list) else response.json))
    with app.app_context():
        assert db.session.get(Host, 1).tls_key == tls["key"].strip() + "\n"
    mismatched = api.post("/api/v1/hosts", json={**NEW, "name": "web-02",
                                                 "tls": {**tls, "key": make_tls()["key"]}},
                          headers=api.admin)
    assert mismatched.status_code == 400 and "does not belong" in mismatched.json["error"]
    assert "PRIVATE KEY" not in mismatched.text


def test_only_admins_change_the_inventory(api, app):
    assert api.post("/api/v1/hosts", json=NEW, headers=OLGA).status_code == 403
    assert api.post("/api/v1/hosts", json=NEW, headers=api.admin).status_code == 201
    assert api.patch("/api/v1/hosts/1", json={"admin_state": "paused"},
                     headers=OLGA).status_code == 403
    assert api.get("/api/v1/hosts", headers=OLGA).status_code == 200
    assert api.get("/api/v1/clusters", headers=OLGA).status_code == 200
    assert api.get("/api/v1/hosts").status_code == 401
    assert api.get("/api/v1/hosts/1", headers=OLGA).json["admin_state"] == "active"


def test_patch_changes_admin_state_labels_and_idc_with_events(api, app):
    assert api.post("/api/v1/hosts", json=NEW, headers=api.admin).status_code == 201
    response = api.patch("/api/v1/hosts/1", json={"admin_state": "draining"}, headers=api.admin)
    assert response.status_code == 200 and response.json["admin_state"] == "draining"
    response = api.patch("/api/v1/hosts/1", json={"labels": {"disk": "hdd"}, "idc": "sh"},
                         headers=api.admin)
    assert (response.json["labels"], response.json["idc"]) == ({"disk": "hdd"}, "sh")
    with app.app_context():
        events = {e.kind: e for e in db.session.scalars(select(Event))}
        assert events["host.admin_state"].message == "web-01: active -> draining"
        assert events["host.admin_state"].actor == "admin"
        assert events["host.update"].data["idc"] == {"from": "bj", "to": "sh"}


@pytest.mark.parametrize("body, status, fragment", [
    ({}, 400, "give admin_state, labels or idc"),
    ({"admin_state": "gone"}, 400, "admin_state"),
    ({"labels": {"a b": "c"}}, 400, "label key"),
])
def test_bad_patches(api, body, status, fragment):
    assert api.post("/api/v1/hosts", json=NEW, headers=api.admin).status_code == 201
    response = api.patch("/api/v1/hosts/1", json=body, headers=api.admin)
    assert response.status_code == status and fragment in response.json["error"], response.json
    assert api.get("/api/v1/hosts/1", headers=api.admin).json["admin_state"] == "active"


def test_missing_hosts_are_404(api):
    assert api.get("/api/v1/hosts/9", headers=api.admin).status_code == 404
    assert api.patch("/api/v1/hosts/9", json={"idc": "x"}, headers=api.admin).status_code == 404


@pytest.fixture
def fleet(api, app):
    for port, (name, cluster, pool) in enumerate((("a", "web", "p1"), ("b", "web", "p2"),
                                                  ("c", "batch", "p1")), start=2376):
        assert api.post("/api/v1/hosts", json={**NEW, "name": name, "cluster": cluster,
                                               "pool": pool, "endpoint": LIVE_HOST + str(port)},
                        headers=api.admin).status_code == 201
    with app.app_context(), db.unit_of_work():
        db.session.get(Host, 1).liveness, db.session.get(Host, 1).last_heartbeat_at = "up", utcnow()
        db.session.get(Host, 2).liveness = "down"
        db.session.get(Host, 3).liveness = "unknown"  # as if never heard from since
    return api


@pytest.mark.parametrize("query, names", [
    ("", ["c", "a", "b"]),
    ("?cluster=web", ["a", "b"]),
    ("?cluster=web&pool=p2", ["b"]),
    ("?liveness=up", ["a"]),
    ("?liveness=unknown", ["c"]),
    ("?cluster=nope", []),
])
def test_list_filters(fleet, query, names):
    response = fleet.get("/api/v1/hosts" + query, headers=OLGA)
    assert [h["name"] for h in response.json] == names


def test_list_rejects_an_unknown_liveness(fleet):
    response = fleet.get("/api/v1/hosts?liveness=sideways", headers=OLGA)
    assert response.status_code == 400 and "liveness" in response.json["error"]


def test_clusters_tree(fleet):
    tree = fleet.get("/api/v1/clusters", headers=OLGA).json
    assert [(c["name"], c["up"], c["down"], c["total"]) for c in tree] == [
        ("batch", 0, 0, 1), ("web", 1, 1, 2)]
    assert [(p["name"], p["total"]) for p in tree[1]["pools"]] == [("p1", 1), ("p2", 1)]


def test_documented_in_openapi(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/api/v1/hosts"]) >= {"get", "post"}
    assert set(paths["/api/v1/hosts/{host_id}"]) >= {"get", "patch"}
    assert "get" in paths["/api/v1/clusters"]
