"""Alerts: each service's editable thresholds, and the notifications Alertmanager sent us."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from berth.clock import utcnow
from berth.db import Base


class AlertThreshold(Base):
    """A service's P999 and error-ratio limits; a missing value means the configured default."""

    __tablename__ = "alert_thresholds"
    __table_args__ = (
        CheckConstraint("p999_s IS NULL OR p999_s > 0", name="p999_positive"),
        CheckConstraint("error_ratio IS NULL OR (error_ratio > 0 AND error_ratio <= 1)",
                        name="error_ratio_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"),
                                            unique=True)
    p999_s: Mapped[float | None]
    error_ratio: Mapped[float | None]
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertNotification(Base):
    """One alert state Alertmanager reported (firing or resolved), stored once."""

    __tablename__ = "alert_notifications"
    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at", "status"),
        CheckConstraint("status IN ('firing', 'resolved')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    alertname: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    annotations: Mapped[dict] = mapped_column(JSON, default=dict)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
