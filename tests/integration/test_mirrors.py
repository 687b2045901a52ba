"""Mirrors on the test bed's real registries: two mirrors (IDCs a and b) guarded by Berth's
token service with a service each, fed from the primary by Berth's sync on a real worker."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.integration.test_registry_permissions import DockerCli
from tests.support import wait_for

pytestmark = pytest.mark.berth_environments("embedded")
PASSWORD = "integration-pass"
MIRRORS = {"idc-a": ("mirror", "a"), "idc-b": ("mirror-b", "b")}  # Berth name: (bed name, IDC)


@pytest.fixture(scope="module")
def mirrors(berth_app, bed):
    """Both bed mirrors registered in Berth and guarded by it; given back at the end."""
    hosts = {}
    try:
        for name, (bed_name, idc) in MIRRORS.items():
            state = berth_app.guard_mirror(bed, bed_name, service=f"berth-mirror-{name}")
            response = berth_app.api("POST", "/api/v1/registries",
                                     json={"name": name, "url": state["url"], "idc": idc})
            assert response.status_code == 201, response.text
            hosts[name] = state["host"]
        yield hosts
    finally:
        for name in MIRRORS:
            berth_app.api("DELETE", f"/api/v1/registries/{name}")
        for bed_name, _ in MIRRORS.values():
            berth_app.release_registry(bed, bed_name)


@pytest.fixture(scope="module")
def team(berth_app, mirrors):
    """A developer and an outsider; project `kept` is mirrored without deletes, `pruned`
    with them."""
    suffix = uuid.uuid4().hex[:6]
    names = {"dev": f"mdev-{suffix}", "outsider": f"mout-{suffix}"}
    for username in names.values():
        assert berth_app.api("POST", "/api/v1/users", json={
            "username": username, "password": PASSWORD}).status_code == 201
    projects = {"kept": f"kept-{suffix}", "pruned": f"pruned-{suffix}"}
    for kind, project in projects.items():
        assert berth_app.api("POST", "/api/v1/projects", json={"name": project}).status_code == 201
        assert berth_app.api("POST", f"/api/v1/projects/{project}/members", json={
            "username": names["dev"], "role": "developer"}).status_code == 201
        response = berth_app.api("POST", "/api/v1/replication-policies", json={
            "name": f"{kind}-{suffix}", "projects": project, "mirrors": list(MIRRORS),
            "propagate_deletes": kind == "pruned"})
        assert response.status_code == 201, response.text
    return {**names, **projects}


@pytest.fixture
def cli(bed, tmp_path):
    def make(engine="e1"):
        return DockerCli(bed.engine(engine)["url"], tmp_path / engine)
    client = bed.docker_client("e1")
    client.images.get(bed.image).tag("busybox-source")
    client.close()
    return make


def unique_push(docker, registry_host, ref_path) -> str:
    """Push an image with a digest of its own to the primary; the reference pushed."""
    name = f"mirrored-{uuid.uuid4().hex[:8]}"
    ref = f"{registry_host}/{ref_path}"
    docker("run", "--name", name, "--network", "none", "busybox-source", "sh", "-c",
           f"echo {name} > /id")
    docker("commit", name, ref)
    docker("rm", name)
    docker("push", ref)
    return ref


def digest_on(berth_app, registry_host: str, service: str, repository: str, tag: str,
              username: str) -> str | None:
    """The tag's digest on a registry, read with a token for that registry's service."""
    token = requests.get(berth_app.url + "/service/token", timeout=10, auth=(username, PASSWORD),
                         params={"service": service,
                                 "scope": f"repository:{repository}:pull"}).json()["token"]
    response = requests.head(f"http://{registry_host}/v2/{repository}/manifests/{tag}", timeout=10,
                             headers={"Authorization": f"Bearer {token}", "Accept": ", ".join([
                                 "application/vnd.docker.distribution.manifest.v2+json",
                                 "application/vnd.oci.image.manifest.v1+json"])})
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def test_a_push_reaches_both_mirrors_and_rights_hold_there(berth_app, registry_host, mirrors,
                                                          team, cli):
    docker = cli()
    assert docker.login(registry_host, team["dev"], PASSWORD).returncode == 0
    repository = f"{team['kept']}/app"
    unique_push(docker, registry_host, f"{repository}:1")
    primary = digest_on(berth_app, registry_host, berth_app.config.registry_service,
                        repository, "1", team["dev"])
    assert primary and primary.startswith("sha256:")
    for name, host in mirrors.items():
        # No manual step: the registry's notification makes Berth sync the repository.
        wait_for(lambda: digest_on(berth_app, host, f"berth-mirror-{name}", repository, "1",
                                   team["dev"]) == primary, 90, f"{repository}:1 on {name}")

    host_b = mirrors["idc-b"]
    member = cli("e2")
    assert member.login(host_b, team["dev"], PASSWORD).returncode == 0
    pulled = member("pull", f"{host_b}/{repository}:1", check=False)
    assert pulled.returncode == 0, pulled.stderr
    member("tag", f"{host_b}/{repository}:1", f"{host_b}/{repository}:pushed-to-mirror")
    refused = member("push", f"{host_b}/{repository}:pushed-to-mirror", check=False)
    assert refused.returncode != 0, "a developer pushed to a mirror: only the sync may"

    outsider = cli("e3")
    assert outsider.login(host_b, team["outsider"], PASSWORD).returncode == 0
    denied = outsider("pull", f"{host_b}/{repository}:1", check=False)
    assert denied.returncode != 0, "an outsider pulled a private project from a mirror"


def test_deletes_propagate_only_where_the_policy_says(berth_app, registry_host, mirrors, team, cli):
    docker = cli()
    assert docker.login(registry_host, team["dev"], PASSWORD).returncode == 0
    repositories = {kind: f"{team[kind]}/gone" for kind in ("kept", "pruned")}
    for repository in repositories.values():
        unique_push(docker, registry_host, f"{repository}:1")
    host, service = mirrors["idc-a"], "berth-mirror-idc-a"
    for repository in repositories.values():
        wait_for(lambda: digest_on(berth_app, host, service, repository, "1", team["dev"]), 90,
                 f"{repository}:1 on idc-a")
    for kind, repository in repositories.items():
        response = berth_app.api("DELETE", f"/api/v1/projects/{team[kind]}/repositories/"
                                           f"{repository}/tags/1")
        assert response.status_code in (200, 204), response.text

    wait_for(lambda: digest_on(berth_app, host, service, repositories["pruned"], "1",
                               team["dev"]) is None, 90, "the delete reaching idc-a")
    # A full sync of the mirror after both deletes has run (it compares the registries
    # themselves): the policy without deletes kept its copy.
    job = berth_app.api("POST", "/api/v1/registries/idc-a/sync").json()
    wait_for(lambda: _job(berth_app, job["id"])["status"] in ("done", "failed"), 90,
             "the manual sync of idc-a")
    assert _job(berth_app, job["id"])["status"] == "done", _job(berth_app, job["id"])
    assert digest_on(berth_app, host, service, repositories["kept"], "1", team["dev"]), \
        "a policy without propagate_deletes removed a tag from the mirror"


def _job(berth_app, job_id: int) -> dict:
    jobs = berth_app.api("GET", "/api/v1/sync-jobs").json()
    return next(job for job in (jobs["items"] if isinstance(jobs, dict) else jobs)
                if job["id"] == job_id)
