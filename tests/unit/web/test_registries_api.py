"""The registries API: admins only; registries probed before saving; policies, sync jobs."""
import pytest

from tests.support import basic_auth

OLGA = basic_auth("olga", "olga-password")
MIRROR = {"name": "bj", "url": "http://bj:5000", "idc": "bj", "ca_bundle": "-----PEM-----"}


@pytest.fixture
def api(app, client, admin, monkeypatch):
    def probe(url, verify, bundle):
        if "down" in url:
            raise ConnectionError("connection refused")
    app.config["BERTH_REGISTRY_PROBE"] = probe
    client.sent = []
    monkeypatch.setattr("registry_sync.tasks.run_sync_job.apply_async",
                        lambda args, kwargs: client.sent.append(tuple(args)))
    client.post("/api/v1/users", json={"username": "olga", "password": "olga-password"},
                headers=admin)
    client.admin = admin
    return client


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/registries"), ("post", "/api/v1/registries"),
    ("delete", "/api/v1/registries/bj"), ("post", "/api/v1/registries/bj/sync"),
    ("get", "/api/v1/sync-jobs"), ("post", "/api/v1/sync-jobs/1/cancel"),
    ("get", "/api/v1/replication-policies"), ("post", "/api/v1/replication-policies"),
    ("patch", "/api/v1/replication-policies/p1"), ("delete", "/api/v1/replication-policies/p1"),
])
def test_admins_only(api, method, path):
    body = MIRROR if path == "/api/v1/registries" else {}  # valid input: auth is what fails
    assert getattr(api, method)(path, json=body).status_code == 401
    response = getattr(api, method)(path, json=body, headers=OLGA)
    assert response.status_code == 403 and "system administrators" in response.json["error"]


def test_add_a_mirror_then_list_it_with_health_and_lag(api):
    response = api.post("/api/v1/registries", json=MIRROR, headers=api.admin)
    assert response.status_code == 201, response.json
    listed = api.get("/api/v1/registries", headers=api.admin).json
    assert [(r["name"], r["service"], r["healthy"], r["ca_bundle"], r["last_error"])
            for r in listed] == [("bj", "berth-mirror-bj", True, "set", None)]
    assert listed[0]["lag"] == {"missing": 0, "outdated": 0, "deletable": 0, "in_sync": 0}


@pytest.mark.parametrize("changes, status, fragment", [
    ({"url": "http://down:5000"}, 400, "the registry at http://down:5000 did not answer"),
    ({"url": "http://bj:5000/path"}, 400, "must have no path"),
    ({"name": "Bad Name"}, 400, "registry name must be"),
])
def test_bad_registries_are_refused(api, changes, status, fragment):
    response = api.post("/api/v1/registries", json={**MIRROR, **changes}, headers=api.admin)
    assert response.status_code == status and fragment in response.json["error"]
    assert api.get("/api/v1/registries", headers=api.admin).json == []


def test_policies_warn_when_they_match_nothing(api):
    api.post("/api/v1/registries", json=MIRROR, headers=api.admin)
    body = {"name": "releases", "tags": "v*", "mirrors": ["bj"]}
    created = api.post("/api/v1/replication-policies", json=body, headers=api.admin)
    assert created.status_code == 201, created.json
    assert (created.json["matches"], created.json["mirrors"]) == (0, ["bj"])
    assert "matches no tag" in created.json["warning"]
    bad = api.patch("/api/v1/replication-policies/releases", json={"tags": "v(",
                    "tags_regex": True}, headers=api.admin)
    assert bad.status_code == 400 and "not a valid regular expression" in bad.json["error"]
    unknown = api.post("/api/v1/replication-policies", json={**body, "name": "x2",
                       "mirrors": ["sh"]}, headers=api.admin)
    assert unknown.status_code == 400 and "no such mirror: sh" in unknown.json["error"]
    patched = api.patch("/api/v1/replication-policies/releases", json={"enabled": False},
                        headers=api.admin)
    assert patched.status_code == 200 and patched.json["enabled"] is False
    assert api.delete("/api/v1/replication-policies/releases",
                      headers=api.admin).status_code == 204
    assert api.get("/api/v1/replication-policies", headers=api.admin).json == []


def test_sync_a_mirror_then_cancel_the_job(api):
    api.post("/api/v1/registries", json=MIRROR, headers=api.admin)
    response = api.post("/api/v1/registries/bj/sync", json={}, headers=api.admin)
    assert response.status_code == 202, response.json
    job = response.json
    assert (job["registry"], job["status"], job["trigger"], job["actor"]) == (
        "bj", "queued", "manual", "admin")
    assert api.sent == [(job["id"],)]
    again = api.post("/api/v1/registries/bj/sync", json={}, headers=api.admin).json
    assert again["id"] == job["id"] and api.sent == [(job["id"],)]
    cancelled = api.post(f"/api/v1/sync-jobs/{job['id']}/cancel", headers=api.admin)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert api.post(f"/api/v1/sync-jobs/{job['id']}/cancel", headers=api.admin).status_code == 409
    assert [j["id"] for j in api.get("/api/v1/sync-jobs", headers=api.admin).json] == [job["id"]]
    assert api.post("/api/v1/registries/nope/sync", json={}, headers=api.admin).status_code == 404
    assert api.delete("/api/v1/registries/bj", headers=api.admin).status_code == 204


def test_a_pushed_tag_queues_a_sync_for_mirrors_of_on_push_policies(api, app, monkeypatch):
    monkeypatch.setattr("berth.projects.tasks.refresh_tag_size.apply_async",
                        lambda args, kwargs: None)
    api.post("/api/v1/projects", json={"name": "shop"}, headers=api.admin)
    api.post("/api/v1/registries", json=MIRROR, headers=api.admin)
    api.post("/api/v1/replication-policies", json={"name": "all", "mirrors": ["bj"]},
             headers=api.admin)
    event = {"id": "e1", "action": "push", "actor": {"name": "admin"}, "target": {
        "repository": "shop/web", "tag": "1", "digest": "sha256:a",
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}}
    secret = {"Authorization": "Bearer " + app.config["BERTH"].notification_secret}
    assert api.post("/service/notifications", json={"events": [event]},
                    headers=secret).status_code == 200
    jobs = api.get("/api/v1/sync-jobs", headers=api.admin).json
    assert [(j["registry"], j["repository"], j["trigger"]) for j in jobs] == [
        ("bj", "shop/web", "push")]
    assert api.sent == [(jobs[0]["id"],)]
    assert api.get("/api/v1/registries", headers=api.admin).json[0]["lag"]["missing"] == 1


def test_a_sync_needs_no_body(api):
    api.post("/api/v1/registries", json=MIRROR, headers=api.admin)
    response = api.post("/api/v1/registries/bj/sync", headers=api.admin)
    assert response.status_code == 202, response.json
    assert response.json["repository"] is None
