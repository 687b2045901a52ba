"""Sync jobs: one queued per mirror and repository, sent after commit; cancel; pushes."""
import pytest

from berth import db
from berth.models import Project
from berth.models.registries import Registry, ReplicationPolicy
from berth.projects import catalogue
from registry_sync import jobs


@pytest.fixture
def sent(monkeypatch):
    """Task messages, as db.after_commit would send them."""
    messages = []
    monkeypatch.setattr(jobs, "enqueue", lambda task, *args: db.after_commit(
        lambda: messages.append((task.name, *args))))
    return messages


@pytest.fixture
def mirrors(database):
    bj = Registry(name="bj", url="http://bj:5000", role="mirror", service="s-bj")
    sh = Registry(name="sh", url="http://sh:5000", role="mirror", service="s-sh")
    database.add_all([bj, sh, Project(name="shop", public=False)])
    database.flush()
    return bj, sh


def test_a_queued_job_is_reused_and_sent_after_commit(database, mirrors, sent):
    bj, sh = mirrors
    first = jobs.request_sync(bj, trigger="manual", actor="admin")
    assert jobs.request_sync(bj, trigger="push") is first
    other = jobs.request_sync(bj, trigger="push", repository="shop/web")
    assert other is not first and jobs.request_sync(sh, trigger="manual") is not first
    assert sent == []  # nothing sent before the rows exist for the worker
    database.commit()
    assert sent == [("registry_sync.tasks.run_sync_job", first.id),
                    ("registry_sync.tasks.run_sync_job", other.id),
                    ("registry_sync.tasks.run_sync_job", first.id + 2)]


def test_cancel(database, mirrors, sent):
    bj, _ = mirrors
    queued = jobs.request_sync(bj, trigger="manual")
    running = jobs.request_sync(bj, trigger="manual", repository="shop/web")
    running.status = "running"
    assert jobs.cancel(queued.id, actor="admin").status == "cancelled"
    assert (jobs.cancel(running.id, actor="admin").status, running.cancel_requested) == (
        "running", True)
    assert jobs.running_jobs() == [running]
    assert jobs.request_sync(bj, trigger="manual") is not queued  # a cancelled one is not reused
    assert [j.id for j in jobs.recent_jobs(2)] == [queued.id + 2, running.id]


def test_a_push_syncs_the_repository_to_the_mirrors_that_want_it(database, mirrors, sent):
    bj, sh = mirrors
    database.add_all([
        ReplicationPolicy(name="releases", tags="v*", mirrors=[bj, sh]),
        ReplicationPolicy(name="manual-only", on_push=False, mirrors=[sh]),
        ReplicationPolicy(name="off", enabled=False, mirrors=[sh]),
    ])
    database.flush()
    catalogue.record_push("shop/web", "v1", "sha256:a", size=None, actor="dev", addr=None)
    made = jobs.on_notification({"events": []}, [("shop/web", "v1"), ("shop/web", "latest")])
    assert sorted((j.mirror.name, j.repository, j.trigger) for j in made) == [
        ("bj", "shop/web", "push"), ("sh", "shop/web", "push")]
    assert jobs.on_notification({"events": []}, [("shop/api", "latest")]) == []


def test_a_delete_syncs_only_where_deletes_propagate(database, mirrors, sent):
    from berth.models.registries import MirrorTag

    bj, sh = mirrors
    database.add_all([
        ReplicationPolicy(name="keep", mirrors=[bj]),
        ReplicationPolicy(name="follow", propagate_deletes=True, mirrors=[sh]),
        MirrorTag(registry_id=sh.id, repository="shop/web", tag="v1", digest="sha256:a"),
    ])
    database.flush()
    envelope = {"events": [{"action": "delete", "target": {
        "repository": "shop/web", "digest": "sha256:a"}}, "junk"]}
    made = jobs.on_notification(envelope, [])
    assert [(j.mirror.name, j.trigger) for j in made] == [("sh", "delete")]
