"""The event and audit log: who did what to which object, when, and from where."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from berth.clock import utcnow
from berth.db import Base


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)  # "host.down", "image.push", ...
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str | None] = mapped_column(String(64))
    source_addr: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(1024), default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
