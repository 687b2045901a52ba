"""Running a sync job, and the periodic reconcile that keeps every mirror converging.

A job compares the primary with one mirror over the repositories its policies select and
copies (or deletes) what differs. It is level-triggered: it never trusts a notification's
payload or an earlier run's record, only what both registries hold now, so running a job
twice, after a crash or a lost notification, copies only what is still missing.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta

from sqlalchemy import delete, select

from berth import db, locks
from berth.celery_app import enqueue, round_lock, settings
from berth.clock import utcnow
from berth.models import (
    MirrorTag,
    Registry,
    ReplicationPolicy,
    ReplicationPolicyMirror,
    Repository,
    SyncJob,
)
from registry_sync import jobs, policies, registries
from registry_sync.copy import Cancelled, copy_tag, delete_tag
from registry_sync.diff import plan_sync, read_tags

TAGS_IN_PARALLEL = 4      # tags copied at once per job; each copies its blobs in parallel too
FLUSH_EVERY_S = 1.0       # progress written to the job row (and cancellation read) this often
STALE_AFTER = timedelta(minutes=10)  # a running job not updated this long lost its worker
LOST_AFTER = timedelta(minutes=2)    # a queued job this old lost its task message (or waited)
COUNTERS = ("blobs_total", "blobs_done", "blobs_skipped", "blobs_mounted", "bytes_total",
            "bytes_sent")
ENDED = ("done", "failed", "cancelled")
WAITING = "waiting: another sync of this mirror runs"


def run_job(job_id: int) -> dict:
    job = db.session.get(SyncJob, job_id)
    if job is None or job.status in ENDED:
        return {"job": job_id, "status": job.status if job else "gone"}
    # One job at a time per mirror: two would copy the same blobs twice.
    with locks.held(round_lock(f"registry_sync.mirror.{job.registry_id}")) as got:
        if not got:
            return {"job": job_id, "status": WAITING}
        return _run_locked(job)


def _run_locked(job: SyncJob) -> dict:
    if job.cancel_requested:
        return _finish(job, "cancelled")
    mirror = job.mirror
    chosen = _policies(job)
    if not chosen:
        return _finish(job, "done", error="no enabled policy sends images here")
    config = settings()
    primary = registries.ensure_primary(config)  # the configured one is the source, always
    copying = chosen
    deleting = [p for p in chosen if p.propagate_deletes]
    repositories = _repositories(job, mirror)
    source_client = registries.sync_client(primary, config)
    target_client = registries.sync_client(mirror, config)
    job.status, job.started_at, job.error = "running", utcnow(), None
    job.attempts += 1
    for name in (*COUNTERS, "tags_total", "tags_done", "tags_deleted"):
        setattr(job, name, 0)
    _commit()

    try:
        source = read_tags(source_client, repositories)
        target = read_tags(target_client, repositories)
        copies = plan_sync(source, target, lambda r, t: any(policies.selects(p, r, t) for p in copying),
                           propagate_deletes=False)
        deletes = plan_sync(source, target, lambda r, t: any(policies.selects(p, r, t) for p in deleting),
                            propagate_deletes=True).deletes if deleting else []
        job = db.session.get(SyncJob, job.id)
        job.tags_total = len(copies.copies) + copies.up_to_date
        job.tags_done = copies.up_to_date
        _commit()
        held = dict(target)
        _copy_all(job.id, source_client, target_client, copies.copies, source, held)
        job = db.session.get(SyncJob, job.id)
        for repository, tag in deletes:
            delete_tag(target_client, repository, tag)
            held.pop((repository, tag), None)
            job.tags_deleted += 1
        _record_holdings(job.registry_id, repositories, held)
        return _finish(job, "done")
    except Cancelled:
        return _finish(db.session.get(SyncJob, job.id), "cancelled")
    except Exception as error:  # noqa: BLE001 - the job records why; the reconcile runs it again
        db.session.rollback()
        return _finish(db.session.get(SyncJob, job.id), "failed", error=str(error)[:2000])


def _copy_all(job_id, source_client, target_client, keys, source, held) -> None:
    """Copy tags in a bounded pool; this thread alone touches the database: it writes the
    summed progress and reads a cancel request every FLUSH_EVERY_S."""
    done_counts = dict.fromkeys(COUNTERS, 0)  # of finished tags
    live: dict[tuple[str, str], dict] = {}    # the running tags' own counters
    lock, stop = threading.Lock(), threading.Event()
    known_blobs: dict[str, str] = {}

    def one(key):
        def progress(counts):
            with lock:
                live[key] = counts
        return copy_tag(source_client, target_client, *key, progress=progress,
                        cancelled=stop.is_set, known_blobs=known_blobs)

    with ThreadPoolExecutor(TAGS_IN_PARALLEL) as pool:
        pending = {pool.submit(one, key): key for key in keys}
        try:
            while pending:
                finished, _ = wait(pending, timeout=FLUSH_EVERY_S, return_when=FIRST_COMPLETED)
                job = db.session.get(SyncJob, job_id)
                for future in finished:
                    key = pending.pop(future)
                    result = future.result()  # a failed tag fails the job (after its retries)
                    held[key] = source[key]
                    with lock:
                        live.pop(key, None)
                    for name in COUNTERS:
                        done_counts[name] += getattr(result, name)
                    job.tags_done += 1
                with lock:
                    for name in COUNTERS:
                        setattr(job, name, done_counts[name] + sum(c.get(name, 0) for c in live.values()))
                db.session.commit()
                db.session.refresh(job, ["cancel_requested"])
                if job.cancel_requested:
                    stop.set()
        except BaseException:
            stop.set()  # the other tags stop at their next check, then the pool joins them
            raise


def _policies(job: SyncJob) -> list[ReplicationPolicy]:
    query = select(ReplicationPolicy).where(
        ReplicationPolicy.enabled.is_(True),
        ReplicationPolicy.mirrors.any(Registry.id == job.registry_id))
    if job.policy_id is not None:
        query = query.where(ReplicationPolicy.id == job.policy_id)
    return list(db.session.scalars(query))


def _repositories(job: SyncJob, mirror: Registry) -> list[str]:
    """The catalogue's repositories and those the mirror held (so deletes are seen too)."""
    if job.repository:
        return [job.repository]
    names = set(db.session.scalars(select(Repository.name)))
    names |= set(db.session.scalars(select(MirrorTag.repository).where(
        MirrorTag.registry_id == mirror.id)))
    return sorted(names)


def _record_holdings(registry_id: int, repositories: list[str], held: dict) -> None:
    """What the mirror holds now over these repositories, replacing the earlier record."""
    db.session.execute(delete(MirrorTag).where(MirrorTag.registry_id == registry_id,
                                               MirrorTag.repository.in_(repositories)))
    now = utcnow()
    db.session.add_all(MirrorTag(registry_id=registry_id, repository=repository, tag=tag,
                                 digest=digest, synced_at=now)
                       for (repository, tag), digest in held.items())


def _finish(job: SyncJob, status: str, error: str | None = None) -> dict:
    job.status, job.finished_at = status, utcnow()
    if error is not None:
        job.error = error
    _commit()
    return {"job": job.id, "status": status, "error": error}


def _commit() -> None:
    # The unit of work commits at the end; progress must be visible while the job runs.
    db.session.commit()


def reconcile_all() -> dict:
    """Beat's round: every mirror that policies feed gets a sync, so drift from a lost
    notification, a failed copy or a mirror that was down is fixed without anyone asking.
    Jobs whose worker died are failed; queued ones whose message was lost are sent again."""
    from registry_sync.tasks import run_sync_job

    now = utcnow()
    stale = list(db.session.scalars(select(SyncJob).where(
        SyncJob.status == "running", SyncJob.updated_at < now - STALE_AFTER)))
    for job in stale:
        job.status, job.finished_at, job.error = "failed", now, "its worker stopped answering"
    for job_id in db.session.scalars(select(SyncJob.id).where(
            SyncJob.status == "queued", SyncJob.created_at < now - LOST_AFTER)):
        enqueue(run_sync_job, job_id)  # a duplicate finds the job ended or the mirror locked
    fed = (select(ReplicationPolicyMirror.registry_id)
           .join(ReplicationPolicy, ReplicationPolicy.id == ReplicationPolicyMirror.policy_id)
           .where(ReplicationPolicy.enabled.is_(True)))
    mirrors = list(db.session.scalars(select(Registry).where(
        Registry.role == "mirror", Registry.healthy.isnot(False), Registry.id.in_(fed))))
    requested = [jobs.request_sync(mirror, trigger="reconcile").id for mirror in mirrors]
    scheduled = 0
    for policy in db.session.scalars(select(ReplicationPolicy).where(
            ReplicationPolicy.enabled.is_(True), ReplicationPolicy.schedule_s.isnot(None))):
        if policy.last_scheduled_at and now - policy.last_scheduled_at < timedelta(
                seconds=policy.schedule_s):
            continue
        policy.last_scheduled_at = now
        for mirror in policy.mirrors:
            jobs.request_sync(mirror, trigger="schedule", policy=policy)
            scheduled += 1
    return {"mirrors": len(mirrors), "jobs": requested, "scheduled": scheduled,
            "stale": len(stale)}
