"""The host inventory: cluster -> pool -> host, with declared and observed facts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from berth.clock import utcnow
from berth.db import Base
from berth.vault import EncryptedText

ADMIN_STATES = ("active", "paused", "draining", "maintenance")
LIVENESS = ("unknown", "up", "down")


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")

    pools: Mapped[list[Pool]] = relationship(back_populates="cluster", cascade="all, delete-orphan")


class Pool(Base):
    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))

    cluster: Mapped[Cluster] = relationship(back_populates="pools")
    hosts: Mapped[list[Host]] = relationship(back_populates="pool")


class Host(Base):
    """A Docker engine endpoint. TLS material is a secret: never logged, never shown."""

    __tablename__ = "hosts"
    __table_args__ = (
        CheckConstraint(
            "admin_state IN ('active', 'paused', 'draining', 'maintenance')", name="admin_state"
        ),
        CheckConstraint("liveness IN ('unknown', 'up', 'down')", name="liveness"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="RESTRICT"), index=True)
    endpoint: Mapped[str] = mapped_column(String(255))  # unix:///... or tcp://host:port
    address: Mapped[str] = mapped_column(String(255), default="127.0.0.1")  # where ports answer
    tls_ca: Mapped[str | None] = mapped_column(Text)
    tls_cert: Mapped[str | None] = mapped_column(Text)
    # The client key is a secret: encrypted at rest with keys kept outside the database.
    tls_key: Mapped[str | None] = mapped_column(EncryptedText)
    idc: Mapped[str] = mapped_column(String(64), default="default")
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    # Declared hardware (the engine cannot tell disk type).
    disk_type: Mapped[str | None] = mapped_column(String(16))
    disk_gb: Mapped[int | None]
    # Observed from the engine's info.
    cpus: Mapped[float | None]
    memory: Mapped[int | None] = mapped_column(BigInteger)
    kernel: Mapped[str | None] = mapped_column(String(128))
    engine_version: Mapped[str | None] = mapped_column(String(64))
    # Ports Berth may hand to host-network services on this host.
    port_range_start: Mapped[int] = mapped_column(default=20000)
    port_range_end: Mapped[int] = mapped_column(default=29999)
    admin_state: Mapped[str] = mapped_column(String(16), default="active")
    liveness: Mapped[str] = mapped_column(String(16), default="unknown")
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_heartbeat_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    pool: Mapped[Pool] = relationship(back_populates="hosts")
