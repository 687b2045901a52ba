"""The token endpoint and the notification webhook, in-process (the real registry is in
tests/integration/test_registry_permissions.py)."""
import pytest

from berth.projects.registry_access import key_directory, signing_key
from berth.registry_auth import verify_token
from berth.clock import utcnow
from tests.support import basic_auth


@pytest.fixture
def shop(client, admin):
    for name in ("dev", "guest", "eve"):
        client.post("/api/v1/users", json={"username": name, "password": f"{name}-password"},
                    headers=admin)
    client.post("/api/v1/projects", json={"name": "shop"}, headers=admin)
    client.post("/api/v1/projects", json={"name": "pub", "public": True}, headers=admin)
    client.post("/api/v1/projects/shop/members", json={"username": "dev", "role": "developer"},
                headers=admin)
    client.post("/api/v1/projects/shop/members", json={"username": "guest", "role": "guest"},
                headers=admin)
    return client


def access(app, response, name):
    config = app.config["BERTH"]
    claims = verify_token(response.json["token"], signing_key(key_directory(config)),
                          issuer=config.token_issuer, audience=config.registry_service, now=utcnow())
    return {tuple(sorted(a["actions"])) for a in claims["access"] if a["name"] == name}


@pytest.mark.parametrize("who, scope, granted", [
    ("dev", "repository:shop/app:pull,push", ("pull", "push")),
    ("guest", "repository:shop/app:pull,push", ("pull",)),
    ("eve", "repository:shop/app:pull", ()),
    (None, "repository:shop/app:pull", ()),
    (None, "repository:pub/app:pull,push", ("pull",)),
    ("dev", "repository:shop/app:delete", ("delete",)),
    ("guest", "repository:shop/app:delete", ()),
])
def test_token_grants_the_intersection(app, shop, who, scope, granted):
    headers = basic_auth(who, f"{who}-password") if who else {}
    response = shop.get("/service/token", query_string={"service": "berth-registry", "scope": scope},
                        headers=headers)
    assert response.status_code == 200
    assert access(app, response, scope.split(":")[1]) == {granted}


def test_login_without_scope_checks_credentials(shop):
    ok = shop.get("/service/token?service=berth-registry", headers=basic_auth("dev", "dev-password"))
    assert ok.status_code == 200 and ok.json["expires_in"] >= 60
    bad = shop.get("/service/token?service=berth-registry", headers=basic_auth("dev", "wrong-pass"))
    assert bad.status_code == 401 and "WWW-Authenticate" in bad.headers


def test_malformed_scope_and_unknown_service_are_400(shop):
    assert shop.get("/service/token?service=berth-registry&scope=nonsense").status_code == 400
    assert shop.get("/service/token?service=other&scope=repository:shop/a:pull").status_code == 400


def notification(action, repository, tag=None, digest="sha256:" + "a" * 64, actor="dev"):
    target = {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
              "repository": repository, "digest": digest, "size": 527}
    if tag:
        target["tag"] = tag
    return {"action": action, "target": target, "actor": {"name": actor},
            "request": {"addr": "127.0.0.1:40000"}}


def test_notifications_need_the_secret_and_keep_the_catalogue(app, shop, admin, monkeypatch):
    from berth.projects import registry_ops

    sent = []
    monkeypatch.setattr("berth.projects.tasks.refresh_tag_size.apply_async",
                        lambda args, kwargs: sent.append(tuple(args)))
    envelope = {"events": [notification("push", "shop/app", "1")]}
    assert shop.post("/service/notifications", json=envelope).status_code == 401
    secret = {"Authorization": "Bearer " + app.config["BERTH"].notification_secret}
    for _ in range(2):  # delivered twice: still one tag
        assert shop.post("/service/notifications", json=envelope, headers=secret).status_code == 200
    repos = shop.get("/api/v1/projects/shop/repositories", headers=admin).json
    assert [(r["name"], [t["name"] for t in r["tags"]]) for r in repos] == [("shop/app", ["1"])]
    assert sent == [("shop/app", "1"), ("shop/app", "1")]
    pulls = {"events": [notification("pull", "shop/app", "1", actor="guest")]}
    shop.post("/service/notifications", json=pulls, headers=secret)
    kinds = [e["kind"] for e in shop.get("/api/v1/audit?kind=image.", headers=admin).json]
    assert kinds == ["image.pull", "image.push", "image.push"]
    delete = {"events": [notification("delete", "shop/app")]}
    shop.post("/service/notifications", json=delete, headers=secret)
    assert shop.get("/api/v1/projects/shop/repositories", headers=admin).json[0]["tags"] == []
    del registry_ops


def test_deploy_pull_credential_pulls_its_own_project_only(app, shop):
    from berth.projects import pull_credentials

    username, password = pull_credentials.issue(app.config["BERTH"].secret_key, "shop")
    headers = basic_auth(username, password)
    own = shop.get("/service/token", headers=headers, query_string={
        "service": "berth-registry", "scope": "repository:shop/app:pull,push"})
    assert access(app, own, "shop/app") == {("pull",)}
    other = shop.get("/service/token", headers=headers, query_string={
        "service": "berth-registry", "scope": "repository:pub/app:pull"})
    assert access(app, other, "pub/app") == {("pull",)}  # public anyway
    forged = shop.get("/service/token?service=berth-registry",
                      headers=basic_auth("deploy$pub", password))
    assert forged.status_code == 401


def test_a_replayed_notification_changes_nothing(app, shop, admin, monkeypatch):
    sent = []
    monkeypatch.setattr("berth.projects.tasks.refresh_tag_size.apply_async",
                        lambda args, kwargs: sent.append(tuple(args)))
    secret = {"Authorization": "Bearer " + app.config["BERTH"].notification_secret}
    envelope = {"events": [{**notification("push", "shop/app", "1"), "id": "event-1"},
                           {**notification("pull", "shop/app", "1", actor="guest"), "id": "event-2"}]}
    for _ in range(2):  # the registry retries a delivery it thinks failed
        assert shop.post("/service/notifications", json=envelope, headers=secret).status_code == 200
    kinds = [e["kind"] for e in shop.get("/api/v1/audit?kind=image.", headers=admin).json]
    assert sorted(kinds) == ["image.pull", "image.push"] and sent == [("shop/app", "1")]
    garbage = {"events": ["not an event", {"id": 5}]}  # ignored, not a 500
    assert shop.post("/service/notifications", json=garbage, headers=secret).status_code == 200
