"""Recording events: every change of state a person would ask "who did that, and when?"."""
from __future__ import annotations

from berth import db
from berth.models import Event


def record(kind: str, message: str = "", *, subject_type: str | None = None,
           subject: str | None = None, actor: str | None = None,
           source_addr: str | None = None, **data) -> Event:
    event = Event(kind=kind, message=message, subject_type=subject_type, subject=subject,
                  actor=actor, source_addr=source_addr, data=data)
    db.session.add(event)
    return event
