"""Revocation on the real test bed: a revoked API token and a deactivated user are refused at
once by the API and by the real registry (`docker login` and `docker pull`); a registry
token issued before lives out its short lifetime."""
from __future__ import annotations

import base64
import json
import uuid

import pytest
import requests

from tests.integration.test_registry_permissions import DockerCli

pytestmark = pytest.mark.berth_environments("embedded")
PASSWORD = "revocation-pass"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def image(berth_app, bed, registry_host, tmp_path_factory):
    """A private project with a pushed image, a developer `dev-*` and a guest `guest-*`."""
    suffix = uuid.uuid4().hex[:6]
    project, dev, guest = f"revoke-{suffix}", f"dev-{suffix}", f"guest-{suffix}"
    for username in (dev, guest):
        assert berth_app.api("POST", "/api/v1/users",
                             json={"username": username, "password": PASSWORD}).status_code == 201
    assert berth_app.api("POST", "/api/v1/projects", json={"name": project}).status_code == 201
    for username, role in ((dev, "developer"), (guest, "guest")):
        assert berth_app.api("POST", f"/api/v1/projects/{project}/members",
                             json={"username": username, "role": role}).status_code == 201
    client = bed.docker_client("e1")
    client.images.get(bed.image).tag("busybox-source")
    client.close()
    ref = f"{registry_host}/{project}/app:1"
    pusher = DockerCli(bed.engine("e1")["url"], tmp_path_factory.mktemp("pusher"))
    assert pusher.login(registry_host, dev, PASSWORD).returncode == 0
    pusher("tag", "busybox-source", ref)
    pusher("push", ref)
    return {"project": project, "dev": dev, "guest": guest, "ref": ref}


@pytest.fixture
def puller(bed, tmp_path):
    """A docker CLI on engine e2 with a credentials store of its own."""
    return DockerCli(bed.engine("e2")["url"], tmp_path / "docker-config")


def registry_token(berth_app, username: str, password: str, scope: str) -> requests.Response:
    return requests.get(berth_app.url + "/service/token", timeout=10, auth=(username, password),
                        params={"service": berth_app.config.registry_service, "scope": scope})


def manifest_status(registry_host: str, repository: str, bearer: str) -> int:
    return requests.get(f"http://{registry_host}/v2/{repository}/manifests/1", timeout=10,
                        headers={"Authorization": f"Bearer {bearer}", "Accept": MANIFEST}).status_code


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_revoked_token_is_refused_by_the_api_and_the_registry_at_once(
        berth_app, registry_host, image, puller):
    user, repository = image["guest"], f"{image['project']}/app"
    created = berth_app.api("POST", "/api/v1/tokens", auth=(user, PASSWORD), json={"name": "ci"})
    assert created.status_code == 201, created.text
    token, token_id = created.json()["token"], created.json()["id"]
    assert berth_app.api("GET", "/api/v1/me", auth=(user, token)).status_code == 200
    login = puller.login(registry_host, user, token)
    assert login.returncode == 0, login.stderr
    pulled = puller("pull", image["ref"], check=False)
    assert pulled.returncode == 0, pulled.stderr
    issued = registry_token(berth_app, user, token, f"repository:{repository}:pull")
    assert issued.status_code == 200
    bearer = issued.json()["token"]
    assert manifest_status(registry_host, repository, bearer) == 200

    revoked = berth_app.api("DELETE", f"/api/v1/tokens/{token_id}", auth=(user, PASSWORD))
    assert revoked.status_code == 204, revoked.text

    refused = berth_app.api("GET", "/api/v1/me", auth=(user, token))
    assert refused.status_code == 401 and refused.json()["error"]
    # docker keeps the revoked token as its stored credential; every pull asks Berth for a
    # new registry token with it, and is refused.
    puller("rmi", image["ref"], check=False)
    again = puller("pull", image["ref"], check=False)
    assert again.returncode != 0
    assert "unauthorized" in again.stderr.lower() or "denied" in again.stderr.lower(), again.stderr
    assert puller.login(registry_host, user, token).returncode != 0
    assert registry_token(berth_app, user, token, f"repository:{repository}:pull").status_code == 401
    # A registry token issued before the revocation is a signed JWT the registry checks
    # without asking Berth: it still works until it expires, BERTH_TOKEN_LIFETIME_S after
    # issue (60 s on this bed, 300 s by default; test_registry_permissions waits one out).
    assert manifest_status(registry_host, repository, bearer) == 200
    lifetime = claims(bearer)["exp"] - claims(bearer)["iat"]
    assert lifetime == berth_app.config.token_lifetime_s == 60
    events = berth_app.api("GET", "/api/v1/audit", params={"kind": "token.revoke",
                                                          "actor": user}).json()
    assert events and events[0]["subject"] == user


def test_a_deactivated_user_is_refused_by_the_api_and_the_registry_at_once(
        berth_app, registry_host, image, puller):
    user = image["dev"]
    login = puller.login(registry_host, user, PASSWORD)
    assert login.returncode == 0, login.stderr
    assert puller("pull", image["ref"], check=False).returncode == 0
    token = berth_app.api("POST", "/api/v1/tokens", auth=(user, PASSWORD),
                          json={"name": "laptop"}).json()["token"]

    deactivated = berth_app.api("PATCH", f"/api/v1/users/{user}", json={"active": False})
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    try:
        for secret in (PASSWORD, token):
            assert berth_app.api("GET", "/api/v1/me", auth=(user, secret)).status_code == 401
        puller("rmi", image["ref"], check=False)
        assert puller("pull", image["ref"], check=False).returncode != 0
        assert puller.login(registry_host, user, PASSWORD).returncode != 0
    finally:
        reactivated = berth_app.api("PATCH", f"/api/v1/users/{user}", json={"active": True})
        assert reactivated.status_code == 200
    # Reactivated: the password works again at once; the token was revoked for good.
    assert puller.login(registry_host, user, PASSWORD).returncode == 0
    assert puller("pull", image["ref"], check=False).returncode == 0
    assert berth_app.api("GET", "/api/v1/me", auth=(user, token)).status_code == 401
