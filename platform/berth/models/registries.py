"""Registry instances: one primary that takes pushes, mirrors per IDC that serve pulls."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from berth.db import Base


class Registry(Base):
    __tablename__ = "registries"
    __table_args__ = (CheckConstraint("role IN ('primary', 'mirror')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    idc: Mapped[str | None] = mapped_column(String(64))
    healthy: Mapped[bool | None]
    last_checked_at: Mapped[datetime | None]


class RegistryEventSeen(Base):
    """Registry notification events already applied, by the registry's event id, so a
    replayed or retried delivery changes nothing. Kept for a bounded time (see catalogue)."""

    __tablename__ = "registry_events_seen"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)
