"""The repository/tag catalogue, kept current from registry notifications.

Notifications can be retried or arrive twice, so every change here is an upsert or a
delete-if-present: applying the same event twice leaves the same catalogue.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from berth import audit, db
from berth.clock import utcnow
from berth.models import Project, Repository, Tag
from berth.models.registries import RegistryEventSeen
from berth.projects.services import find_project
from berth.registry_auth import project_of

MANIFEST_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)


def repositories(project: Project) -> list[Repository]:
    return list(db.session.scalars(select(Repository).where(
        Repository.project_id == project.id).order_by(Repository.name)))


def find_repository(name: str) -> Repository | None:
    return db.session.scalar(select(Repository).where(Repository.name == name))


def tags(repository: Repository) -> list[Tag]:
    return list(db.session.scalars(select(Tag).where(
        Tag.repository_id == repository.id).order_by(Tag.pushed_at.desc(), Tag.name)))


def _repository(project: Project, name: str) -> Repository:
    repository = find_repository(name)
    if repository is None:
        repository = Repository(project=project, name=name)
        db.session.add(repository)
    return repository


def record_push(repository_name: str, tag: str | None, digest: str, *, size: int | None,
                actor: str | None, addr: str | None, at: datetime | None = None) -> Tag | None:
    project = find_project(project_of(repository_name) or "")
    if project is None:
        return None  # the token service never grants a push outside a project
    repository = _repository(project, repository_name)
    audit.record("image.push", f"pushed {repository_name}{':' + tag if tag else ''}",
                 subject_type="repository", subject=repository_name, actor=actor,
                 source_addr=addr, digest=digest, tag=tag)
    if not tag:
        return None  # pushed by digest: nothing to name in the catalogue
    db.session.flush()
    row = db.session.scalar(select(Tag).where(Tag.repository_id == repository.id, Tag.name == tag))
    if row is None:
        row = Tag(repository_id=repository.id, name=tag, digest=digest)
        db.session.add(row)
    row.digest, row.pushed_by, row.pushed_at = digest, actor, at or utcnow()
    if size is not None:
        row.size = size
    return row


def record_pull(repository_name: str, reference: str | None, *, actor: str | None,
                addr: str | None) -> None:
    audit.record("image.pull", f"pulled {repository_name}{':' + reference if reference else ''}",
                 subject_type="repository", subject=repository_name, actor=actor, source_addr=addr)


def record_delete(repository_name: str, digest: str, *, actor: str | None, addr: str | None,
                  audited: bool = True) -> int:
    """A manifest was deleted: every tag that pointed at it is gone. Returns how many."""
    if audited:
        audit.record("image.delete", f"deleted {repository_name}@{digest}",
                     subject_type="repository", subject=repository_name, actor=actor,
                     source_addr=addr, digest=digest)
    repository = find_repository(repository_name)
    if repository is None:
        return 0
    gone = list(db.session.scalars(select(Tag).where(
        Tag.repository_id == repository.id, Tag.digest == digest)))
    for row in gone:
        db.session.delete(row)
    return len(gone)


def set_size(repository_name: str, tag: str, digest: str, size: int) -> None:
    """Record the image size once computed from its manifest (if the tag still points there)."""
    repository = find_repository(repository_name)
    if repository is None:
        return
    row = db.session.scalar(select(Tag).where(Tag.repository_id == repository.id, Tag.name == tag))
    if row is not None and row.digest == digest:
        row.size = size


# The registry retries a delivery until it is acknowledged and keeps its queue in memory only,
# so a replay comes within hours at most; a week of ids is ample and keeps the table small.
SEEN_RETENTION = timedelta(days=7)


def first_delivery(event_id: object) -> bool:
    """Record `event_id` as applied; False if it already was. Events without an id (not
    from a real registry) cannot be told apart and are applied each time."""
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        return True
    if db.session.get(RegistryEventSeen, event_id) is not None:
        return False
    try:
        # A savepoint: a concurrent delivery of the same event that committed first makes
        # this insert fail, which means "already applied", not an error.
        with db.session.begin_nested():
            db.session.add(RegistryEventSeen(event_id=event_id, seen_at=utcnow()))
    except IntegrityError:
        return False
    return True


def forget_seen_events() -> None:
    db.session.execute(delete(RegistryEventSeen).where(
        RegistryEventSeen.seen_at < utcnow() - SEEN_RETENTION))


def apply_notification(envelope: dict, *, own_subject: str = "berth") -> list[tuple[str, str]]:
    """Apply a registry notification envelope ({"events": [...]}).

    Returns the (repository, tag) pushes, whose sizes are then read from their manifests.
    Deletes that Berth itself made (actor `own_subject`) were audited when a person asked.
    """
    pushed = []
    forget_seen_events()
    for event in envelope.get("events", []):
        if not isinstance(event, dict) or not first_delivery(event.get("id")):
            continue
        target = event.get("target") or {}
        action = event.get("action")
        repository = target.get("repository")
        is_manifest = target.get("mediaType") in MANIFEST_MEDIA_TYPES
        actor = (event.get("actor") or {}).get("name") or None
        addr = ((event.get("request") or {}).get("addr") or "").rsplit(":", 1)[0] or None
        if not repository or action not in ("push", "pull", "delete"):
            continue
        if action == "delete" and target.get("digest"):
            record_delete(repository, target["digest"], actor=actor, addr=addr,
                          audited=actor != own_subject)
        elif not is_manifest:
            continue  # blob traffic: layers are not what people push or pull
        elif action == "push":
            if record_push(repository, target.get("tag"), target.get("digest", ""), size=None,
                           actor=actor, addr=addr) is not None:
                pushed.append((repository, target["tag"]))
        elif actor != own_subject:
            record_pull(repository, target.get("tag") or target.get("digest"), actor=actor, addr=addr)
    return pushed
