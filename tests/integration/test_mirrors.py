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


@pytest.fixture
def idcs(berth_app, fleet, database):
    """e1 in IDC a and e2 in IDC b, where the two mirrors are; back to `default` after."""
    from berth import db
    from berth.hosts import services
    from berth.models import Host

    def move(to):
        with db.unit_of_work():
            for engine, idc in to.items():
                services.update_host(db.session.get(Host, fleet[engine]), idc=idc, actor="test")

    move({"e1": "a", "e2": "b"})
    yield
    move({"e1": "default", "e2": "default"})


def mirrored(database, berth_app, mirror: str, repository: str, tag: str, digest: str) -> bool:
    """Whether Berth has seen `mirror` holding the tag at `digest` (what the deployer reads)."""
    from sqlalchemy import select

    from berth.models.registries import MirrorTag, Registry

    database.rollback()  # a fresh snapshot each poll
    return database.scalar(select(MirrorTag.digest).join(
        Registry, Registry.id == MirrorTag.registry_id).where(
        Registry.name == mirror, MirrorTag.repository == repository, MirrorTag.tag == tag)) == digest


def instances(berth_app, app: str, service: str) -> list[dict]:
    response = berth_app.api("GET", f"/api/v1/applications/{app}")
    assert response.status_code == 200, response.text
    return next(s for s in response.json()["services"] if s["name"] == service)["instances"]


def test_a_host_pulls_from_its_idcs_mirror_and_falls_back_when_it_is_down(
        berth_app, bed, registry_host, mirrors, team, cli, idcs, database):
    from tests.integration.apps import all_healthy, http_service, tear_down

    docker = cli()
    assert docker.login(registry_host, team["dev"], PASSWORD).returncode == 0
    repository = f"{team['kept']}/served"
    image = unique_push(docker, registry_host, f"{repository}:1")
    digest = digest_on(berth_app, registry_host, berth_app.config.registry_service, repository,
                       "1", team["dev"])
    for name in mirrors:
        wait_for(lambda: mirrored(database, berth_app, name, repository, "1", digest), 90,
                 f"{repository}:1 recorded on {name}")
    log_b = bed.state["registries"]["mirror-b"]["log"]
    log_before = open(log_b, encoding="utf-8", errors="replace").read()

    app = f"near-{uuid.uuid4().hex[:6]}"
    service = http_service("web", image, 1, constraints=["engine==e2"])
    response = berth_app.api("POST", "/api/v1/applications", json={
        "name": app, "project": team["kept"], "services": [service]})
    assert response.status_code == 201, response.text
    try:
        wait_for(lambda: all_healthy(berth_app, app, {"web": 1}), 180, f"{app} healthy")
        assert [i["pulled_from"] for i in instances(berth_app, app, "web")] == ["idc-b"]
        # The mirror's own log saw the manifest fetched: the bytes came from IDC b.
        served = open(log_b, encoding="utf-8", errors="replace").read()[len(log_before):]
        assert f"/v2/{repository}/manifests/1" in served, served[-2000:]

        # IDC b's mirror goes dark (Berth has not noticed yet): the next replica on the same
        # host still deploys, from the next source.
        bed.stop_registry("mirror-b")
        try:
            assert berth_app.api("PATCH", f"/api/v1/applications/{app}/services/web",
                                 json={"replicas": 2}).status_code == 200
            wait_for(lambda: all_healthy(berth_app, app, {"web": 2}), 180, f"{app} with 2")
            by_slot = {i["slot"]: i["pulled_from"] for i in instances(berth_app, app, "web")}
            assert by_slot[0] == "idc-b" and by_slot[1] in ("idc-a", "primary"), by_slot
        finally:
            bed.start_registry("mirror-b")
    finally:
        tear_down(berth_app, app)


def test_a_mirror_stopped_mid_sync_converges_by_itself_and_never_serves_a_broken_image(
        berth_app, bed, registry_host, mirrors, team, cli):
    """A push whose sync to idc-a is cut by the mirror going down; once it is back, the jobs
    (retries and the periodic reconcile, no manual step) bring it to the primary's digest, and
    whenever the mirror answered for the manifest, every blob it names was there."""
    docker = cli()
    assert docker.login(registry_host, team["dev"], PASSWORD).returncode == 0
    repository = f"{team['kept']}/large"
    name = f"large-{uuid.uuid4().hex[:8]}"
    ref = f"{registry_host}/{repository}:1"
    # Three layers of random bytes, 96 MiB: long enough a copy (seconds) to be cut midway.
    docker("run", "--name", name, "--network", "none", "busybox-source", "sh", "-c",
           "for n in 1 2 3; do head -c 33554432 /dev/urandom > /blob$n; done")
    docker("commit", name, ref)
    docker("rm", name)
    host, service = mirrors["idc-a"], "berth-mirror-idc-a"
    docker("push", ref)
    # The cut must land while a blob is half-sent. The job row's progress is flushed once a
    # second, which a fast copy can outrun; the mirror's own upload sessions on disk cannot.
    wait_for(lambda: _uploading(bed, "mirror", repository), 60,
             f"a blob of {repository} to be uploading to idc-a", interval_s=0.01)
    job = _job_for(berth_app, "idc-a", repository, ("running",))
    bed.stop_registry("mirror")
    assert job is not None, "a blob was uploading to idc-a with no sync job running"
    try:
        cut = wait_for(lambda: _ended(_job(berth_app, job["id"])), 60, "the cut sync to end")
        assert cut["status"] == "failed", f"the sync was not cut midway: {cut}"
    finally:
        bed.start_registry("mirror")
    primary = digest_on(berth_app, registry_host, berth_app.config.registry_service, repository,
                        "1", team["dev"])

    def whole() -> bool:
        """The mirror's tag is the primary's digest; checked for missing blobs each time."""
        found = digest_on(berth_app, host, service, repository, "1", team["dev"])
        if found is not None:
            assert _blobs_missing(berth_app, host, service, repository, team["dev"]) == [], \
                "the mirror served a manifest whose blobs were missing"
        return found == primary

    wait_for(whole, 180, f"{repository}:1 on idc-a to converge after the outage")


def _job_for(berth_app, mirror: str, repository: str, statuses) -> dict | None:
    """A sync job of `mirror` that covers `repository` (its own or a full one)."""
    jobs = berth_app.api("GET", "/api/v1/sync-jobs").json()
    for job in (jobs["items"] if isinstance(jobs, dict) else jobs):
        if job.get("registry") == mirror and job.get("repository") in (repository, None) \
                and job["status"] in statuses:
            return job
    return None


def _uploading(bed, bed_name: str, repository: str) -> bool:
    """Whether the bed registry holds a started blob upload (bytes written) in `repository`."""
    uploads = (bed.registries[bed_name].data_dir / "docker/registry/v2/repositories"
               / repository / "_uploads")
    for data in uploads.glob("*/data"):
        try:
            if data.stat().st_size > 0:
                return True
        except FileNotFoundError:  # the upload completed between glob and stat
            continue
    return False


def _ended(job: dict) -> dict | None:
    return job if job["status"] in ("done", "failed", "cancelled") else None


def _blobs_missing(berth_app, registry_host: str, service: str, repository: str,
                   username: str) -> list[str]:
    token = requests.get(berth_app.url + "/service/token", timeout=10, auth=(username, PASSWORD),
                         params={"service": service,
                                 "scope": f"repository:{repository}:pull"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": ", ".join([
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json"])}
    manifest = requests.get(f"http://{registry_host}/v2/{repository}/manifests/1", timeout=10,
                            headers=headers)
    if manifest.status_code != 200:
        return []
    body = manifest.json()
    digests = [body["config"]["digest"]] + [layer["digest"] for layer in body["layers"]]
    return [d for d in digests if requests.head(
        f"http://{registry_host}/v2/{repository}/blobs/{d}", timeout=10,
        headers=headers).status_code != 200]
