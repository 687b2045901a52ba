"""The mirrors page: registries with health and lag, sync now and the live jobs partial,
adding a mirror (probed first), policies with the match-nothing warning; admins only."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from berth import accounts, db
from berth.models import Project
from berth.models.registries import MirrorTag, Registry, ReplicationPolicy, SyncJob
from berth.projects import catalogue
from registry_sync import jobs
from tests.support import login


@pytest.fixture
def sent(monkeypatch):
    """Task messages, as db.after_commit would send them (as in test_sync_jobs)."""
    messages = []
    monkeypatch.setattr(jobs, "enqueue", lambda task, *args: db.after_commit(
        lambda: messages.append((task.name, *args))))
    return messages


@pytest.fixture
def probe(app):
    """A registry probe: URLs with "down" in them do not answer."""
    seen = []

    def fake(url, verify, bundle):
        seen.append((url, verify))
        if "down" in url:
            raise ConnectionError("connection refused")
    app.config["BERTH_REGISTRY_PROBE"] = fake
    return seen


@pytest.fixture
def world(app):
    """Mirror bj (up, one tag in sync, one missing) and sh (down, never checked ok)."""
    from berth.clock import utcnow

    with app.app_context(), db.unit_of_work():
        bj = Registry(name="bj", url="http://bj:5000", role="mirror", idc="bj", service="s-bj",
                      healthy=True, last_checked_at=utcnow())
        sh = Registry(name="sh", url="http://sh:5000", role="mirror", idc="sh", service="s-sh",
                      healthy=False, last_error="GET /v2/ answered HTTP 502")
        db.session.add_all([bj, sh, Project(name="shop", public=False)])
        db.session.flush()
        catalogue.record_push("shop/web", "v1", "sha256:a", size=None, actor="dev", addr=None)
        catalogue.record_push("shop/web", "v2", "sha256:b", size=None, actor="dev", addr=None)
        db.session.add_all([
            ReplicationPolicy(name="releases", tags="v*", mirrors=[bj]),
            MirrorTag(registry_id=bj.id, repository="shop/web", tag="v1", digest="sha256:a"),
        ])


@pytest.fixture
def admin_client(client, admin, probe):
    client.token = login(client, "admin", "admin-password")
    return client


@pytest.fixture
def olga(app, client):
    with app.app_context(), db.unit_of_work():
        accounts.create_user("olga", "olga-password")
    client.token = login(client, "olga", "olga-password")
    return client


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_admin_sees_registries_health_and_lag(admin_client, world):
    page = admin_client.get("/mirrors/")
    assert page.status_code == 200
    html = page.text
    assert 'href="/mirrors/"' in html and ">Mirrors</a>" in html  # the nav link
    bj = html.split('id="registry-bj"')[1].split("</tr>")[0]
    sh = html.split('id="registry-sh"')[1].split("</tr>")[0]
    assert "http://bj:5000" in bj and ">up<" in bj and "checked never" not in bj
    assert "1 missing" in bj and "0 outdated" in bj and "1 in sync" in bj
    assert ">down<" in sh and "checked never" in sh and "HTTP 502" in sh
    assert "0 missing" in sh and "Sync now" in sh
    assert 'id="policy-releases"' in html and 'hx-trigger="every 2s"' in html


def test_non_admins_are_refused(olga, world, sent):
    assert olga.get("/mirrors/").status_code == 403
    assert olga.get("/mirrors/jobs").status_code == 403
    assert olga.post("/mirrors/bj/sync", data={"csrf_token": olga.token}).status_code == 403
    assert olga.post("/mirrors/new", data={"csrf_token": olga.token, "name": "x",
                                           "url": "http://x:5000"}).status_code == 403
    assert ">Mirrors</a>" not in olga.get("/").text
    assert sent == []


def test_sync_now_queues_a_job_the_partial_shows_then_cancel(admin_client, world, sent, app):
    response = admin_client.post("/mirrors/bj/sync", data={"csrf_token": admin_client.token})
    assert response.status_code == 302
    with app.app_context():
        job = db.session.scalar(select(SyncJob))
        assert (job.mirror.name, job.trigger, job.status, job.actor) == (
            "bj", "manual", "queued", "admin")
        job_id = job.id
    assert sent == [("registry_sync.tasks.run_sync_job", job_id)]  # once the request committed
    assert "is queued" in admin_client.get("/mirrors/").text
    with app.app_context(), db.unit_of_work():
        job = db.session.get(SyncJob, job_id)
        job.status, job.tags_total, job.tags_done = "running", 4, 1
        job.blobs_total, job.blobs_done, job.bytes_total, job.bytes_sent = 10, 3, 4 * 2**20, 2**20
    part = admin_client.get("/mirrors/jobs")
    assert part.status_code == 200 and "<html" not in part.text
    row = part.text.split(f'id="job-{job_id}"')[1].split("</tr>")[0]
    assert ">running<" in row and "1 / 4" in row and "3 / 10" in row
    assert 'data-width="25"' in row and "1.0 MiB / 4.0 MiB" in row and "Cancel" in row
    cancelled = admin_client.post(f"/mirrors/jobs/{job_id}/cancel",
                                  data={"csrf_token": admin_client.token})
    assert cancelled.status_code == 302
    row = admin_client.get("/mirrors/jobs").text.split(f'id="job-{job_id}"')[1].split("</tr>")[0]
    assert "cancelling" in row and "Cancel</button>" not in row


def test_a_post_without_csrf_is_refused(admin_client, world, sent, app):
    admin_client.post("/mirrors/bj/sync", data={})
    assert count(app, SyncJob) == 0 and sent == []


def test_adding_a_mirror_that_does_not_answer_shows_the_error_and_saves_nothing(
        admin_client, probe, app):
    response = admin_client.post("/mirrors/new", data={
        "csrf_token": admin_client.token, "name": "gz", "url": "http://down:5000", "idc": "gz",
        "tls_verify": "y"})
    assert response.status_code == 400
    assert "the registry at http://down:5000 did not answer: connection refused" in response.text
    assert 'value="http://down:5000"' in response.text  # the form as typed
    assert count(app, Registry) == 0
    ok = admin_client.post("/mirrors/new", data={
        "csrf_token": admin_client.token, "name": "gz", "url": "http://gz:5000", "idc": "gz"})
    assert ok.status_code == 302
    assert probe[-1] == ("http://gz:5000", False)  # the box left unticked: TLS not verified
    with app.app_context():
        gz = db.session.scalar(select(Registry))
        assert (gz.name, gz.idc, gz.role, gz.tls_verify, gz.healthy) == (
            "gz", "gz", "mirror", False, True)
    assert "Mirror gz added" in admin_client.get("/mirrors/").text


def test_a_policy_that_matches_nothing_is_saved_with_a_warning(admin_client, world, app):
    form = {"csrf_token": admin_client.token, "name": "nightly", "projects": "*",
            "repositories": "*", "tags": "nightly-*", "mirrors": ["bj", "sh"], "on_push": "y"}
    response = admin_client.post("/mirrors/policies", data=form, follow_redirects=True)
    assert response.status_code == 200
    assert "alert-warning" in response.text and "matches no tag" in response.text
    with app.app_context():
        policy = db.session.scalar(select(ReplicationPolicy).where(
            ReplicationPolicy.name == "nightly"))
        assert [m.name for m in policy.mirrors] == ["bj", "sh"] and policy.on_push
        assert not policy.propagate_deletes and not policy.tags_regex
    matching = admin_client.post("/mirrors/policies", data={**form, "name": "v-tags",
                                 "tags": "v[0-9]+", "tags_regex": "y"}, follow_redirects=True)
    assert "Policy v-tags added" in matching.text and "alert-warning" not in matching.text
    bad = admin_client.post("/mirrors/policies", data={**form, "name": "empty", "mirrors": []})
    assert bad.status_code == 400 and "mirrors must list at least one mirror" in bad.text
    assert 'value="empty"' in bad.text  # the form as typed
    regex = admin_client.post("/mirrors/policies", data={**form, "name": "broken", "tags": "v(",
                                                         "tags_regex": "y"})
    assert regex.status_code == 400 and "not a valid regular expression" in regex.text
    with app.app_context():
        assert sorted(db.session.scalars(select(ReplicationPolicy.name))) == [
            "nightly", "releases", "v-tags"]
    deleted = admin_client.post("/mirrors/policies/nightly/delete",
                                data={"csrf_token": admin_client.token}, follow_redirects=True)
    assert "Policy nightly deleted" in deleted.text and 'id="policy-nightly"' not in deleted.text
