"""Services (desired state), their dependencies, and the container instances observed."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint,
                        false)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from berth.clock import utcnow
from berth.db import Base


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Its project's admins and developers operate it, its guests see it, nobody else does.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A reconcile pass holds this lease so two passes never act on one application at once.
    reconcile_lease_until: Mapped[datetime | None]
    # Who holds it (a random token per pass): only the holder renews or releases it.
    reconcile_lease_owner: Mapped[str | None] = mapped_column(String(36))
    # When an operator last deployed or scaled: a dependency wait is timed from then at most.
    deploy_started_at: Mapped[datetime | None]
    # Set by a delete: passes then tear the services down, dependents first, and drop the row.
    deleting_since: Mapped[datetime | None]

    services: Mapped[list[Service]] = relationship(back_populates="application",
                                                   order_by="Service.name")
    project: Mapped["Project"] = relationship()  # noqa: F821


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("application_id", "name"),
        CheckConstraint("strategy IN ('spread', 'binpack')", name="strategy"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    image: Mapped[str] = mapped_column(String(512))  # repository:tag or repository@digest
    command: Mapped[list | None] = mapped_column(JSON)
    environment: Mapped[dict] = mapped_column(JSON, default=dict)
    ports: Mapped[list] = mapped_column(JSON, default=list)
    cpus: Mapped[float] = mapped_column(default=0.1)
    memory: Mapped[int] = mapped_column(BigInteger, default=64 * 2**20)
    constraints: Mapped[list] = mapped_column(JSON, default=list)
    strategy: Mapped[str] = mapped_column(String(16), default="spread")
    healthcheck: Mapped[dict | None] = mapped_column(JSON)
    # Its Prometheus endpoint, {port, path, histogram, status_label} (promql.MetricsSpec).
    metrics: Mapped[dict | None] = mapped_column(JSON)
    # Hardening of its containers (all capabilities are dropped; these are added back).
    capabilities: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    pids_limit: Mapped[int] = mapped_column(default=512, server_default="512")
    read_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    replicas: Mapped[int] = mapped_column(default=1)
    # The released revision: image ... healthcheck above are always its spec (see
    # ServiceRevision); a release to another one changes them when it completes.
    revision: Mapped[int] = mapped_column(default=1)
    # Where its containers may go (placement filters), besides the label constraints.
    cluster: Mapped[str | None] = mapped_column(String(64))
    pool: Mapped[str | None] = mapped_column(String(64))
    idc: Mapped[str | None] = mapped_column(String(64))
    min_cpus: Mapped[float | None]
    min_memory: Mapped[int | None] = mapped_column(BigInteger)
    # Log lines matching it count as errors, for a canary's analysis.
    error_pattern: Mapped[str] = mapped_column(String(256), default="ERROR|WARN",
                                               server_default="ERROR|WARN")
    status: Mapped[str] = mapped_column(String(32), default="pending")
    status_detail: Mapped[str | None] = mapped_column(String(1024))
    waiting_since: Mapped[datetime | None]
    # The healthy endpoints ("address:port") and a version bumped whenever they change,
    # for discovery's blocking queries.
    endpoints: Mapped[list] = mapped_column(JSON, default=list)
    endpoints_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    application: Mapped[Application] = relationship(back_populates="services")
    instances: Mapped[list[ContainerInstance]] = relationship(back_populates="service")
    autoscaling: Mapped[AutoscalingPolicy | None] = relationship(back_populates="service")
    revisions: Mapped[list[ServiceRevision]] = relationship(
        back_populates="service", order_by="ServiceRevision.number", cascade="all, delete-orphan")


class ServiceDependency(Base):
    __tablename__ = "service_dependencies"
    __table_args__ = (
        UniqueConstraint("service_id", "depends_on_id"),
        CheckConstraint("condition IN ('started', 'healthy')", name="condition"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    depends_on_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    condition: Mapped[str] = mapped_column(String(16), default="healthy")


class ContainerInstance(Base):
    """One replica: its deterministic name lets a retried task find its container."""

    __tablename__ = "container_instances"
    __table_args__ = (UniqueConstraint("service_id", "slot", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"), index=True)
    slot: Mapped[int]
    revision: Mapped[int]
    name: Mapped[str] = mapped_column(String(255), unique=True)
    container_id: Mapped[str | None] = mapped_column(String(64))
    host_port: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(32), default="pending")
    health: Mapped[str | None] = mapped_column(String(32))
    cpu_percent: Mapped[float | None]
    # The last one-shot stats sample (berth.workloads.metrics): the next round's CPU% is the
    # delta from it, valid only for the same container.
    cpu_sample_container_id: Mapped[str | None] = mapped_column(String(64))
    cpu_sample_usage_ns: Mapped[int | None] = mapped_column(BigInteger)
    cpu_sample_system_ns: Mapped[int | None] = mapped_column(BigInteger)
    # Crash restarts in a row of this slot, and until when the next one waits (back-off).
    restarts: Mapped[int] = mapped_column(default=0, server_default="0")
    backoff_until: Mapped[datetime | None]
    # What a canary analysis compares (berth.workloads.signals): the container's log lines
    # and those matching the service's error pattern, counted since it started, up to
    # logs_read_at; and its memory in use at the last stats sample.
    log_lines: Mapped[int] = mapped_column(default=0, server_default="0")
    error_lines: Mapped[int] = mapped_column(default=0, server_default="0")
    logs_read_at: Mapped[datetime | None]
    logs_container_id: Mapped[str | None] = mapped_column(String(64))
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Where the host pulled the image from: a mirror's name, or the primary's (see
    # registry_sync.nearest); None when the image was on the host already or is not Berth's.
    pulled_from: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    service: Mapped[Service] = relationship(back_populates="instances")


class AutoscalingPolicy(Base):
    """Keep CPU under a target; `cpu_basis` says what 100% means (one core or the limit)."""

    __tablename__ = "autoscaling_policies"
    __table_args__ = (CheckConstraint("cpu_basis IN ('core', 'limit')", name="cpu_basis"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), unique=True
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    min_replicas: Mapped[int] = mapped_column(default=1)
    max_replicas: Mapped[int] = mapped_column(default=10)
    target_cpu_percent: Mapped[float] = mapped_column(default=50.0)
    cpu_basis: Mapped[str] = mapped_column(String(8), default="limit")
    scale_up_factor: Mapped[float] = mapped_column(default=2.0)
    cooldown_s: Mapped[int] = mapped_column(default=60)
    scale_down_stabilization_s: Mapped[int] = mapped_column(default=300, server_default="300")
    tolerance: Mapped[float] = mapped_column(default=0.1, server_default="0.1")
    last_scaled_at: Mapped[datetime | None]
    # [[unix time, replicas], ...] recommended within the scale-down window: a service scales
    # down only to the highest of them, so a dip in load does not drop capacity at once.
    recommendations: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    last_decision: Mapped[str | None] = mapped_column(String(255))
    last_decided_at: Mapped[datetime | None]

    service: Mapped[Service] = relationship(back_populates="autoscaling")


class ServiceRevision(Base):
    """One revision of a service's spec, stored whole, so any kept one can be released again."""

    __tablename__ = "service_revisions"
    __table_args__ = (UniqueConstraint("service_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    # image, command, environment, cpus, memory, healthcheck
    spec: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))

    service: Mapped[Service] = relationship(back_populates="revisions")


class Release(Base):
    """A release of one service from one revision to another: its plan (`settings`) and
    where it stands (`progress`, the pure machine's state), advanced by reconcile rounds."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    # Releases started together share it, and are promoted together.
    group: Mapped[str | None] = mapped_column(String(36), index=True)
    from_revision: Mapped[int]
    to_revision: Mapped[int]
    strategy: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    progress: Mapped[dict] = mapped_column(JSON, default=dict)
    # running, paused, waiting (for promotion or approval); succeeded, rolled_back, failed
    status: Mapped[str] = mapped_column(String(24), default="running", index=True)
    detail: Mapped[str | None] = mapped_column(String(1024))
    analysis: Mapped[dict | None] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]

    service: Mapped[Service] = relationship()
