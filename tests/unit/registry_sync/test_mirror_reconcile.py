"""The periodic reconcile: every fed mirror gets a job, dead jobs are failed, lost ones sent
again, scheduled policies run when due; a job with nothing to do ends at once."""
from datetime import timedelta

import pytest

from berth import db
from berth.clock import utcnow
from berth.models.registries import Registry, ReplicationPolicy, SyncJob
from registry_sync import jobs, run


@pytest.fixture
def sent(monkeypatch):
    messages = []

    def enqueue(task, *args):
        db.after_commit(lambda: messages.append((task.name, *args)))
    monkeypatch.setattr(jobs, "enqueue", enqueue)
    monkeypatch.setattr(run, "enqueue", enqueue)
    return messages


@pytest.fixture
def fleet(database):
    fed = Registry(name="fed", url="http://fed:5000", role="mirror", service="s-fed", healthy=True)
    down = Registry(name="down", url="http://down:5000", role="mirror", service="s-down",
                    healthy=False)
    idle = Registry(name="idle", url="http://idle:5000", role="mirror", service="s-idle")
    off = Registry(name="off", url="http://off:5000", role="mirror", service="s-off")
    database.add_all([fed, down, idle, off,
                      ReplicationPolicy(name="all", mirrors=[fed, down]),
                      ReplicationPolicy(name="disabled", enabled=False, mirrors=[off])])
    database.flush()
    return fed, down, idle, off


def test_fed_healthy_mirrors_get_one_job_each_round(database, fleet, sent):
    fed, *_ = fleet
    first = run.reconcile_all()
    again = run.reconcile_all()  # the first round's job is still queued: reused
    database.commit()
    assert first["jobs"] == again["jobs"] and len(first["jobs"]) == 1
    job = database.get(SyncJob, first["jobs"][0])
    assert (job.registry_id, job.trigger, job.repository) == (fed.id, "reconcile", None)
    assert sent == [("registry_sync.tasks.run_sync_job", job.id)]


def test_dead_running_jobs_fail_and_lost_queued_ones_are_sent_again(database, fleet, sent):
    fed, down, *_ = fleet
    long_ago = utcnow() - timedelta(hours=1)
    dead = SyncJob(registry_id=fed.id, trigger="push", status="running", updated_at=long_ago)
    lost = SyncJob(registry_id=down.id, trigger="push", status="queued", created_at=long_ago)
    fresh = SyncJob(registry_id=down.id, trigger="push", status="queued", repository="a/b")
    database.add_all([dead, lost, fresh])
    database.flush()
    result = run.reconcile_all()
    database.commit()
    assert result["stale"] == 1 and dead.status == "failed" and "worker" in dead.error
    assert ("registry_sync.tasks.run_sync_job", lost.id) in sent
    assert ("registry_sync.tasks.run_sync_job", fresh.id) not in sent


def test_a_scheduled_policy_runs_when_due(database, fleet, sent):
    fed, *_ = fleet
    policy = database.query(ReplicationPolicy).filter_by(name="all").one()
    policy.schedule_s = 3600
    assert run.reconcile_all()["scheduled"] == 2  # never ran: due now, for both its mirrors
    assert run.reconcile_all()["scheduled"] == 0  # ran a moment ago
    policy.last_scheduled_at = utcnow() - timedelta(seconds=3601)
    assert run.reconcile_all()["scheduled"] == 2


def test_a_job_for_a_mirror_no_policy_feeds_ends_saying_so(database, fleet, sent, monkeypatch):
    *_, idle, _ = fleet
    monkeypatch.setattr(run, "round_lock", lambda name: _FreeLock())
    job = SyncJob(registry_id=idle.id, trigger="manual")
    database.add(job)
    database.flush()
    result = run.run_job(job.id)
    assert result["status"] == "done" and "no enabled policy" in result["error"]
    assert run.run_job(job.id)["status"] == "done"  # an ended job is left alone


class _FreeLock:
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass
