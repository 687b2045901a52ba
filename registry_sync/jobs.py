"""Sync jobs: ask for one (at most one queued per mirror and repository), cancel, list, and
turn registry notifications into jobs for the mirrors whose policies want the image."""
from __future__ import annotations

from sqlalchemy import select

from berth import audit, db
from berth.celery_app import enqueue
from berth.clock import utcnow
from berth.errors import Conflict, NotFound
from berth.models.registries import MirrorTag, Registry, ReplicationPolicy, SyncJob
from registry_sync.policies import selects

ENDED = ("done", "failed", "cancelled")


def request_sync(registry: Registry, *, trigger: str, actor: str | None = None,
                 policy: ReplicationPolicy | None = None,
                 repository: str | None = None) -> SyncJob:
    """A queued job not yet started will see the newest state anyway: reuse it, so a burst of
    pushes makes one job, not one per tag."""
    queued = db.session.scalar(select(SyncJob).where(
        SyncJob.registry_id == registry.id, SyncJob.status == "queued",
        SyncJob.cancel_requested.is_(False),
        SyncJob.repository.is_(None) if repository is None else SyncJob.repository == repository,
    ).order_by(SyncJob.id).limit(1))
    if queued is not None:
        if queued.policy_id is not None and (policy is None or policy.id != queued.policy_id):
            queued.policy_id = None  # asked for by two policies: the job serves all of them
        return queued
    job = SyncJob(mirror=registry, registry_id=registry.id, trigger=trigger, actor=actor,
                  policy_id=policy.id if policy is not None else None, repository=repository)
    db.session.add(job)
    db.session.flush()
    from registry_sync.tasks import run_sync_job  # the task module imports this one's callers

    enqueue(run_sync_job, job.id)
    return job


def get_job(job_id: int) -> SyncJob:
    job = db.session.get(SyncJob, job_id)
    if job is None:
        raise NotFound(f"no sync job {job_id}")
    return job


def cancel(job_id: int, actor: str | None) -> SyncJob:
    job = get_job(job_id)
    if job.status in ENDED:
        raise Conflict(f"sync job {job_id} is {job.status} already")
    job.cancel_requested = True
    if job.status == "queued":  # no worker holds it: nothing to wait for
        job.status, job.finished_at = "cancelled", utcnow()
    audit.record("registry.sync.cancel", f"cancelled sync job {job_id}", subject_type="registry",
                 subject=job.mirror.name, actor=actor, job=job_id)
    return job


def recent_jobs(limit: int = 50) -> list[SyncJob]:
    return list(db.session.scalars(select(SyncJob).order_by(SyncJob.id.desc()).limit(limit)))


def running_jobs() -> list[SyncJob]:
    return list(db.session.scalars(select(SyncJob).where(
        SyncJob.status == "running").order_by(SyncJob.id)))


def deleted_tags(envelope: dict) -> list[tuple[str, str]]:
    """A delete event names a digest, not tags: the tags are those the mirrors hold on it."""
    found = []
    for event in envelope.get("events", []):
        if not isinstance(event, dict):
            continue
        target = event.get("target") or {}
        if event.get("action") == "delete" and target.get("repository") and target.get("digest"):
            found += [(target["repository"], tag) for tag in db.session.scalars(
                select(MirrorTag.tag).where(MirrorTag.repository == target["repository"],
                                            MirrorTag.digest == target["digest"]).distinct())]
    return found


def on_notification(envelope: dict, pushed: list[tuple[str, str]]) -> list[SyncJob]:
    """After the catalogue took a notification: sync each touched repository to every mirror
    of an on-push policy that selects it (deletes only where the policy propagates them)."""
    policies = list(db.session.scalars(select(ReplicationPolicy).where(
        ReplicationPolicy.enabled.is_(True), ReplicationPolicy.on_push.is_(True))))
    if not policies:
        return []
    touched = [(r, t, "push") for r, t in pushed]
    touched += [(r, t, "delete") for r, t in deleted_tags(envelope)]
    jobs: dict[tuple[int, str], SyncJob] = {}
    for repository, tag, trigger in touched:
        for policy in policies:
            if trigger == "delete" and not policy.propagate_deletes:
                continue
            if not selects(policy, repository, tag):
                continue
            for mirror in policy.mirrors:
                # No policy on the job: it applies every policy of the mirror to the repository.
                if (mirror.id, repository) not in jobs:
                    jobs[mirror.id, repository] = request_sync(
                        mirror, trigger=trigger, repository=repository)
    return list(jobs.values())
