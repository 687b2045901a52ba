"""Registry instances: one primary that takes pushes, mirrors per IDC that serve pulls, the
policies saying what goes where, the sync jobs that copy it, and what each mirror holds."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from berth.clock import utcnow
from berth.db import Base

SYNC_STATES = ("queued", "running", "done", "failed", "cancelled")
SYNC_TRIGGERS = ("push", "delete", "schedule", "manual", "reconcile")


class Registry(Base):
    __tablename__ = "registries"
    __table_args__ = (CheckConstraint("role IN ('primary', 'mirror')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    idc: Mapped[str | None] = mapped_column(String(64))
    # The token service's `service` (the JWT audience) this registry is configured with: one
    # per registry, so a token for one registry is not accepted by another.
    service: Mapped[str | None] = mapped_column(String(128), unique=True)
    # TLS towards the registry: verify its certificate (with ca_bundle, PEM, if set).
    tls_verify: Mapped[bool] = mapped_column(default=True, server_default="1")
    ca_bundle: Mapped[str | None] = mapped_column(Text)
    healthy: Mapped[bool | None]
    last_checked_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplicationPolicy(Base):
    """Which images go to which mirrors, and when. Patterns are globs over project and
    repository names (the repository without its project); tags are a glob, or a regex."""

    __tablename__ = "replication_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    projects: Mapped[str] = mapped_column(String(255), default="*")
    repositories: Mapped[str] = mapped_column(String(255), default="*")
    tags: Mapped[str] = mapped_column(String(255), default="*")
    tags_regex: Mapped[bool] = mapped_column(default=False, server_default="0")
    on_push: Mapped[bool] = mapped_column(default=True, server_default="1")
    schedule_s: Mapped[int | None]  # a full sync this often; None: only the reconcile
    propagate_deletes: Mapped[bool] = mapped_column(default=False, server_default="0")
    enabled: Mapped[bool] = mapped_column(default=True, server_default="1")
    last_scheduled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    mirrors: Mapped[list[Registry]] = relationship(secondary="replication_policy_mirrors",
                                                   order_by="Registry.name")


class ReplicationPolicyMirror(Base):
    __tablename__ = "replication_policy_mirrors"

    policy_id: Mapped[int] = mapped_column(
        ForeignKey("replication_policies.id", ondelete="CASCADE"), primary_key=True)
    registry_id: Mapped[int] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True)


class SyncJob(Base):
    """One sync of a mirror (all that its policies select, or one repository), with its
    progress, written as it goes so a page can show it live and a restart can resume it."""

    __tablename__ = "sync_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')",
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"),
                                             index=True)
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("replication_policies.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(String(16))
    repository: Mapped[str | None] = mapped_column(String(255))  # None: everything selected
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    actor: Mapped[str | None] = mapped_column(String(64))
    tags_total: Mapped[int] = mapped_column(default=0, server_default="0")
    tags_done: Mapped[int] = mapped_column(default=0, server_default="0")
    tags_deleted: Mapped[int] = mapped_column(default=0, server_default="0")
    blobs_total: Mapped[int] = mapped_column(default=0, server_default="0")
    blobs_done: Mapped[int] = mapped_column(default=0, server_default="0")
    blobs_skipped: Mapped[int] = mapped_column(default=0, server_default="0")
    blobs_mounted: Mapped[int] = mapped_column(default=0, server_default="0")
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    mirror: Mapped[Registry] = relationship()


class MirrorTag(Base):
    """What a mirror holds, as Berth last saw it: the digest of each tag copied there (or
    found there by a reconcile). The deployer pulls from a mirror only when it has the
    digest; the mirrors page counts lag from these rows against the primary's catalogue."""

    __tablename__ = "mirror_tags"
    __table_args__ = (UniqueConstraint("registry_id", "repository", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registry_id: Mapped[int] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"),
                                             index=True)
    repository: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(100))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegistryEventSeen(Base):
    """Registry notification events already applied, by the registry's event id, so a
    replayed or retried delivery changes nothing. Kept for a bounded time (see catalogue)."""

    __tablename__ = "registry_events_seen"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)
