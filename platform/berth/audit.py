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


def query(*, kind: str | None = None, actor: str | None = None, subject: str | None = None,
          subject_type: str | None = None, since=None, until=None, before_id: int | None = None,
          limit: int = 100, where=None) -> list[Event]:
    """Newest first. `kind` matches a prefix ("image." finds pushes, pulls and deletes);
    `where` is an extra SQL condition (the web's "only what this user may see")."""
    from sqlalchemy import select

    statement = select(Event).order_by(Event.id.desc()).limit(min(max(limit, 1), 1000))
    if kind:
        statement = statement.where(Event.kind.startswith(kind, autoescape=True))
    if actor:
        statement = statement.where(Event.actor == actor)
    if subject:
        statement = statement.where(Event.subject == subject)
    if subject_type:
        statement = statement.where(Event.subject_type == subject_type)
    if since is not None:
        statement = statement.where(Event.at >= since)
    if until is not None:
        statement = statement.where(Event.at < until)
    if before_id is not None:
        statement = statement.where(Event.id < before_id)
    if where is not None:
        statement = statement.where(where)
    return list(db.session.scalars(statement))
