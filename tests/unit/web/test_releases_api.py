"""The releases API: revisions and their diff, a release started and acted on, and bad
input refused with nothing started."""
import pytest

from berth.workloads import releases
from berth.workloads import services as workloads

NEW = "127.0.0.1:5000/library/busybox:2"
BASE = "/api/v1/applications/site/services/web"


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch):
    monkeypatch.setattr(releases, "enqueue", lambda *args: None)
    monkeypatch.setattr(workloads, "enqueue", lambda *args: None)
    monkeypatch.setattr(releases, "_check_image", lambda *args: None)  # no registry here


def test_a_release_makes_a_revision_with_its_diff_and_can_be_acted_on(client, admin, site):
    answer = client.post(BASE + "/releases", headers=admin,
                         json={"changes": {"image": NEW}, "strategy": "canary"})
    assert answer.status_code == 201, answer.get_json()
    release = answer.get_json()
    assert (release["from_revision"], release["to_revision"], release["status"]) == (1, 2, "running")
    assert release["plan"]["max_surge"] == "25%" and release["plan"]["deadline_s"] == 600
    revisions = client.get(BASE + "/revisions", headers=admin).get_json()
    assert [(r["number"], r["released"]) for r in revisions] == [(1, True), (2, False)]
    diff = client.get(BASE + "/revisions/1/diff/2", headers=admin).get_json()
    assert diff == {"changes": {"image": {"from": "127.0.0.1:5000/library/busybox:1", "to": NEW}}}
    again = client.post(BASE + "/releases", headers=admin, json={"changes": {"cpus": 0.5}})
    assert again.status_code == 409 and "already has release" in again.get_json()["error"]
    early = client.post(BASE + f"/releases/{release['id']}/promote", headers=admin)
    assert early.status_code == 409 and "not started" in early.get_json()["error"]
    done = client.post(BASE + f"/releases/{release['id']}/rollback", headers=admin).get_json()
    assert done["status"] == "rolled_back"
    history = client.get(BASE + "/releases", headers=admin).get_json()
    assert [r["id"] for r in history] == [release["id"]]


@pytest.mark.parametrize("body, message", [
    ({"changes": {"image": NEW}, "batch": 0}, "batch must be at least 1"),
    ({"changes": {"image": NEW}, "stages": [{"pools": ["nowhere"]}]}, "unknown pool nowhere"),
    ({"changes": {"image": NEW}, "surprise": 1}, "unknown release setting"),
    ({"changes": {"image": NEW}, "update_config": {"failure_action": "continue"}}, "failure_action"),
    ({}, "either changes"),
])
def test_bad_input_is_a_400_that_says_what_to_fix(client, admin, site, body, message):
    answer = client.post(BASE + "/releases", headers=admin, json=body)
    assert answer.status_code == 400 and message in answer.get_json()["error"]
    assert client.get(BASE + "/releases", headers=admin).get_json() == []


def test_compose_update_config_maps_onto_the_rolling_settings():
    assert releases.from_update_config({"parallelism": 2, "delay": "10s", "order": "start-first",
                                        "failure_action": "pause"}) == {
        "batch": 2, "auto_rollback": False, "max_surge": 2, "max_unavailable": 0, "pause_s": 10.0}


def test_only_operators_release(client, site):
    from tests.support import basic_auth

    answer = client.post(BASE + "/releases", headers=basic_auth("viewer", "viewer-password"),
                         json={"changes": {"image": NEW}})
    assert answer.status_code == 403
