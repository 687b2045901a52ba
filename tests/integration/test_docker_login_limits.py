"""Failed `docker login`s against the real registry lock the username at Berth's token
endpoint (429), each one audited, while a docker client with a valid credential, on the same
address, keeps pulling. In both environments: counts in memory (embedded) and in Redis."""
from __future__ import annotations

import uuid

import limits
import pytest
import requests

from berth.config import Config
from tests.integration.test_registry_permissions import DockerCli

PASSWORD = "integration-pass"
# The default per username (10 per 5 minutes), which the test bed's Berth keeps; it raises
# the per-address one (tests/integration/conftest.py), so the valid client below makes more
# requests than the default address limit (30) would allow failures.
PER_USER = limits.parse(Config.login_failures_per_user).amount
PER_ADDRESS = limits.parse(Config.login_failures_per_address).amount


@pytest.fixture(scope="module")
def one_web_process(berth_app):
    """With Redis as the broker every web process shares the counts (two here). The embedded
    environment counts in each process's memory: with one process the count is exact, and a
    restart afterwards forgets this module's failures, so no later test finds 127.0.0.1
    nearer its limit."""
    if berth_app.config.rate_limit_storage_uri != "memory://":
        yield berth_app
        return
    berth_app.stop("web")
    berth_app.start_web(workers=1)
    yield berth_app
    berth_app.stop("web")
    berth_app.start_web()


@pytest.fixture(scope="module")
def accounts(one_web_process):
    suffix = uuid.uuid4().hex[:6]
    names = {"victim": f"victim-{suffix}", "puller": f"puller-{suffix}"}
    project = f"limits-{suffix}"
    for username in names.values():
        assert one_web_process.api("POST", "/api/v1/users", json={
            "username": username, "password": PASSWORD}).status_code == 201
    assert one_web_process.api("POST", "/api/v1/projects", json={"name": project}).status_code == 201
    for username in names.values():
        assert one_web_process.api("POST", f"/api/v1/projects/{project}/members", json={
            "username": username, "role": "developer"}).status_code == 201
    return {"project": project, **names}


def token_request(berth_app, username, password, scope=None):
    return requests.get(berth_app.url + "/service/token", timeout=10, auth=(username, password),
                        params={"service": berth_app.config.registry_service,
                                **({"scope": scope} if scope else {})})


def test_failed_docker_logins_lock_the_username_not_a_valid_puller(
        one_web_process, bed, registry_host, accounts, tmp_path):
    berth_app, project = one_web_process, accounts["project"]
    ref = f"{registry_host}/{project}/app:1"
    scope = f"repository:{project}/app:pull"
    # The puller pushes an image and logs in on another engine, as a deploy host would.
    pusher = DockerCli(bed.engine("e1")["url"], tmp_path / "pusher")
    pusher("tag", bed.image, ref)
    assert pusher.login(registry_host, accounts["puller"], PASSWORD).returncode == 0
    pusher("push", ref)
    puller = DockerCli(bed.engine("e2")["url"], tmp_path / "puller")
    assert puller.login(registry_host, accounts["puller"], PASSWORD).returncode == 0

    # An attacker on the same address guesses the victim's password with docker login.
    attacker = DockerCli(bed.engine("e3")["url"], tmp_path / "attacker")

    def failures():
        return berth_app.api("GET", "/api/v1/audit", params={
            "kind": "user.login_failed", "subject": accounts["victim"]}).json()

    for n in range(PER_USER):  # a docker login may ask for a token more than once
        result = attacker.login(registry_host, accounts["victim"], f"guess-{n}")
        assert result.returncode != 0, result.stdout
        if len(failures()) >= PER_USER:
            break
    locked = attacker.login(registry_host, accounts["victim"], PASSWORD)  # the right one
    assert locked.returncode != 0, locked.stdout
    assert "429" in locked.stderr or "too many" in locked.stderr.lower(), locked.stderr
    answer = token_request(berth_app, accounts["victim"], PASSWORD, scope)
    assert answer.status_code == 429, answer.text
    assert 0 < int(answer.headers["Retry-After"]) <= 300
    assert "too many failed logins for this username" in answer.json()["error"]

    # Each guess is in the audit log, from this address, without the password tried.
    events = failures()
    assert len(events) == PER_USER  # refused attempts are not checked, so not counted
    assert {(e["source_addr"], e["data"]["via"]) for e in events} == {
        ("127.0.0.1", "registry token endpoint")}
    assert not any("guess-" in f"{e['message']} {e['data']}" for e in events)

    # The valid client is never slowed: more token requests than either limit allows
    # failures, and real pulls (each asks Berth for a token), all from 127.0.0.1.
    for _ in range(PER_ADDRESS + PER_USER):
        assert token_request(berth_app, accounts["puller"], PASSWORD, scope).status_code == 200
    for _ in range(3):
        puller("rmi", "--force", ref, check=False)
        pulled = puller("pull", ref, check=False)
        assert pulled.returncode == 0, pulled.stderr
    # The lock still holds for the victim: guessing cannot go on.
    assert token_request(berth_app, accounts["victim"], PASSWORD).status_code == 429
