"""Real `docker login/push/pull` against the primary registry, which asks Berth's token
service for every operation: roles, public/private projects, robots, removal, deletes."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tests.support import wait_for

# The registry guarded by one Berth is the subject here, not where Berth keeps its data.
pytestmark = pytest.mark.berth_environments("embedded")
PASSWORD = "integration-pass"


class DockerCli:
    """The docker command line for one engine, with its own credentials store."""

    def __init__(self, engine_url: str, config_dir):
        self.env = {"DOCKER_HOST": engine_url, "DOCKER_CONFIG": str(config_dir),
                    "PATH": "/usr/local/bin:/usr/bin:/bin"}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                                timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
        return result

    def login(self, registry: str, username: str, password: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "login", registry, "-u", username, "--password-stdin"],
                              input=password, env=self.env, capture_output=True, text=True,
                              timeout=60)


@pytest.fixture(scope="module")
def team(berth_app, bed):
    """Users and projects for this module, with names of their own."""
    suffix = uuid.uuid4().hex[:6]
    names = {role: f"{role}-{suffix}" for role in ("dev", "guest", "outsider", "leaver")}
    for username in names.values():
        assert berth_app.api("POST", "/api/v1/users",
                             json={"username": username, "password": PASSWORD}).status_code == 201
    project, public = f"team-{suffix}", f"open-{suffix}"
    assert berth_app.api("POST", "/api/v1/projects", json={"name": project}).status_code == 201
    assert berth_app.api("POST", "/api/v1/projects", json={"name": public, "public": True}).status_code == 201
    for role, member_role in (("dev", "developer"), ("guest", "guest"), ("leaver", "developer")):
        response = berth_app.api("POST", f"/api/v1/projects/{project}/members",
                                 json={"username": names[role], "role": member_role})
        assert response.status_code == 201, response.text
    berth_app.api("POST", f"/api/v1/projects/{public}/members",
                  json={"username": names["dev"], "role": "developer"})
    return {"project": project, "public": public, **names}


def catalogue_tags(berth_app, project: str, repository: str) -> list[dict]:
    """The tags Berth lists for a repository; none while the push notification that creates
    the repository is still on its way (the registry delivers notifications asynchronously)."""
    response = berth_app.api("GET", f"/api/v1/projects/{project}/repositories/"
                                    f"{project}/{repository}/tags")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def cli(bed, tmp_path):
    """A docker CLI on engine e1 (which has the test image) with no stored credentials."""
    return lambda engine="e1": DockerCli(bed.engine(engine)["url"], tmp_path / engine)


def push_as(cli_, registry, username, ref):
    if username:
        assert cli_.login(registry, username, PASSWORD).returncode == 0
    cli_("tag", "busybox-source", ref)
    return cli_("push", ref, check=False)


@pytest.fixture(autouse=True)
def source_image(bed):
    client = bed.docker_client("e1")
    client.images.get(bed.image).tag("busybox-source")
    client.close()


def test_developer_pushes_and_the_catalogue_follows(berth_app, registry_host, team, cli):
    ref = f"{registry_host}/{team['project']}/app:1"
    result = push_as(cli(), registry_host, team["dev"], ref)
    assert result.returncode == 0, result.stderr

    def tag_with_size():
        tags = catalogue_tags(berth_app, team["project"], "app")
        return tags and tags[0]["size"] and tags[0]
    tag = wait_for(tag_with_size, 60, "the push notification and the worker's size lookup")
    assert tag["name"] == "1" and tag["pushed_by"] == team["dev"] and tag["digest"].startswith("sha256:")
    events = berth_app.api("GET", "/api/v1/audit", params={"kind": "image.push",
                                                          "actor": team["dev"]}).json()
    assert events and events[0]["subject"] == f"{team['project']}/app"


def test_guest_pull_works_and_push_is_denied(registry_host, team, cli):
    ref = f"{registry_host}/{team['project']}/app:1"
    push_as(cli(), registry_host, team["dev"], ref)
    guest = cli("e2")
    assert guest.login(registry_host, team["guest"], PASSWORD).returncode == 0
    pulled = guest("pull", ref, check=False)
    assert pulled.returncode == 0, pulled.stderr
    guest("tag", ref, f"{registry_host}/{team['project']}/app:guest")
    denied = guest("push", f"{registry_host}/{team['project']}/app:guest", check=False)
    assert denied.returncode != 0 and ("denied" in denied.stderr or "unauthorized" in denied.stderr)


def test_non_member_cannot_pull_a_private_project(registry_host, team, cli):
    push_as(cli(), registry_host, team["dev"], f"{registry_host}/{team['project']}/app:1")
    outsider = cli("e3")
    assert outsider.login(registry_host, team["outsider"], PASSWORD).returncode == 0
    result = outsider("pull", f"{registry_host}/{team['project']}/app:1", check=False)
    assert result.returncode != 0
    anonymous = cli("e3")
    anonymous("logout", registry_host, check=False)
    assert anonymous("pull", f"{registry_host}/{team['project']}/app:1", check=False).returncode != 0


def test_anonymous_pulls_public_and_cannot_push(registry_host, team, cli):
    ref = f"{registry_host}/{team['public']}/app:1"
    assert push_as(cli(), registry_host, team["dev"], ref).returncode == 0
    anonymous = cli("e3")
    pulled = anonymous("pull", ref, check=False)
    assert pulled.returncode == 0, pulled.stderr
    anonymous("tag", ref, f"{registry_host}/{team['public']}/app:anon")
    pushed = anonymous("push", f"{registry_host}/{team['public']}/app:anon", check=False)
    assert pushed.returncode != 0


def registry_token(berth_app, username, scope):
    response = requests.get(berth_app.url + "/service/token", timeout=10,
                            params={"service": berth_app.config.registry_service, "scope": scope},
                            auth=(username, PASSWORD) if username else None)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def unique_image(cli_, ref: str) -> None:
    """An image with its own digest (a tag delete removes every tag on its digest)."""
    name = f"unique-{uuid.uuid4().hex[:8]}"
    cli_("run", "--name", name, "--network", "none", "busybox-source", "sh", "-c",
         f"echo {name} > /id")
    cli_("commit", name, ref)
    cli_("rm", name)


def test_tag_delete_for_developer_and_admin_denied_for_guest(berth_app, bed, registry_host, team, cli):
    project = team["project"]
    base = f"http://{registry_host}/v2/{project}/app/manifests"
    docker = cli()
    assert docker.login(registry_host, team["dev"], PASSWORD).returncode == 0
    for tag in ("del-dev", "del-admin"):
        unique_image(docker, f"{registry_host}/{project}/app:{tag}")
        assert docker("push", f"{registry_host}/{project}/app:{tag}", check=False).returncode == 0
    # The registry API straight, with the tokens Berth issues:
    pull = registry_token(berth_app, team["dev"], f"repository:{project}/app:pull")
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    digest = requests.head(f"{base}/del-dev", timeout=10, headers={
        "Authorization": f"Bearer {pull}", "Accept": accept}).headers["Docker-Content-Digest"]
    guest_token = registry_token(berth_app, team["guest"], f"repository:{project}/app:delete")
    denied = requests.delete(f"{base}/{digest}", timeout=10,
                             headers={"Authorization": f"Bearer {guest_token}"})
    assert denied.status_code == 401
    dev_token = registry_token(berth_app, team["dev"], f"repository:{project}/app:delete")
    deleted = requests.delete(f"{base}/{digest}", timeout=10,
                              headers={"Authorization": f"Bearer {dev_token}"})
    assert deleted.status_code == 202
    # And through Berth's API, which deletes in the registry on the admin's behalf.
    path = f"/api/v1/projects/{project}/repositories/{project}/app/tags"
    wait_for(lambda: any(t["name"] == "del-admin" for t in catalogue_tags(berth_app, project, "app")),
             60, "the catalogue to list del-admin")
    guest_try = berth_app.api("DELETE", f"{path}/del-admin", auth=(team["guest"], PASSWORD))
    assert guest_try.status_code == 403
    assert berth_app.api("DELETE", f"{path}/del-admin").status_code == 204
    assert requests.get(f"{base}/del-admin", timeout=10, headers={
        "Authorization": f"Bearer {pull}", "Accept": accept}).status_code == 404


def test_robot_pulls_until_revoked(berth_app, registry_host, team, cli):
    project = team["project"]
    ref = f"{registry_host}/{project}/app:robot"
    assert push_as(cli(), registry_host, team["dev"], ref).returncode == 0
    robot = berth_app.api("POST", f"/api/v1/projects/{project}/robots",
                          json={"name": "puller", "can_push": False}).json()
    host = cli("e2")
    login = host.login(registry_host, robot["username"], robot["secret"])
    assert login.returncode == 0, login.stderr
    assert host("pull", ref, check=False).returncode == 0
    host("tag", ref, f"{registry_host}/{project}/app:by-robot")
    assert host("push", f"{registry_host}/{project}/app:by-robot", check=False).returncode != 0
    assert berth_app.api("DELETE", f"/api/v1/projects/{project}/robots/puller").status_code == 204
    host("rmi", ref, check=False)
    assert host("pull", ref, check=False).returncode != 0
    assert host.login(registry_host, robot["username"], robot["secret"]).returncode != 0


def test_removed_member_cannot_push_once_the_token_expires(berth_app, registry_host, team, cli):
    project, leaver = team["project"], team["leaver"]
    assert push_as(cli(), registry_host, leaver, f"{registry_host}/{project}/app:leaver").returncode == 0
    old_token = registry_token(berth_app, leaver, f"repository:{project}/app:pull,push")
    upload = f"http://{registry_host}/v2/{project}/app/blobs/uploads/"

    def upload_status(token):
        return requests.post(upload, timeout=10, headers={"Authorization": f"Bearer {token}"}).status_code

    assert upload_status(old_token) == 202
    assert berth_app.api("DELETE", f"/api/v1/projects/{project}/members/{leaver}").status_code == 204
    # Every new docker operation asks for a new token, and gets no push:
    again = push_as(cli(), registry_host, None, f"{registry_host}/{project}/app:leaver2")
    assert again.returncode != 0
    new_token = registry_token(berth_app, leaver, f"repository:{project}/app:pull,push")
    assert upload_status(new_token) == 401
    # The token issued before the removal dies with its short lifetime (plus the registry's
    # 60 s allowance for clock skew).
    wait_for(lambda: upload_status(old_token) == 401, 180, "the old token to expire", interval_s=2)


def test_the_registry_log_never_holds_the_notification_secret(berth_app, bed, registry_host, team, cli):
    push_as(cli(), registry_host, team["dev"], f"{registry_host}/{team['project']}/logged:1")
    log = Path(bed.state["registries"]["primary"]["log"])
    assert log.exists(), f"no registry log at {log}"  # the right file, even if quiet
    assert berth_app.config.notification_secret not in log.read_text()
