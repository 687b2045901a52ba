"""The last lines of one instance's container log, for the service page (which follows them
live). Read through the engine the way berth.workloads.signals does: one call, bounded by a
timeout, nothing held open in the database while the engine answers."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from berth import db
from berth.engine import EngineError
from berth.hosts.services import Connect, default_connect, endpoint_of
from berth.models import ContainerInstance, Host

TAIL_LINES = 200
ENGINE_TIMEOUT_S = 5.0
# How far back a read without `since` looks: the last lines are within it for any container
# that logs at all, and a long-lived container's whole log is not read every two seconds.
LOOKBACK_S = 3600.0


@dataclass
class LogTail:
    lines: list[str] = field(default_factory=list)
    until: float = 0.0  # Unix seconds: the next read's `since`
    error: str | None = None  # why there are no lines (no container, engine unreachable)


def tail(instance: ContainerInstance, *, since: float | None = None, lines: int = TAIL_LINES,
         connect: Connect = default_connect, now: float | None = None) -> LogTail:
    """Up to `lines` last lines stamped after `since` (Unix seconds; None: the last hour)."""
    until = time.time() if now is None else now
    if not instance.container_id or instance.host_id is None:
        return LogTail(until=until, error="This instance has no container yet.")
    host = db.session.get(Host, instance.host_id)
    if host is None:
        return LogTail(until=until, error="Its host is gone.")
    endpoint = endpoint_of(host, timeout_s=ENGINE_TIMEOUT_S)
    container_id = instance.container_id
    since = until - LOOKBACK_S if since is None else max(since, until - LOOKBACK_S)
    db.session.commit()  # nothing held while the engine answers
    try:
        engine = connect(endpoint)
        try:
            read = engine.logs_since(container_id, since, until)
        finally:
            engine.close()
    except EngineError as error:
        return LogTail(until=until, error=f"The engine did not answer: {str(error)[:300]}")
    if read is None:
        return LogTail(until=until, error="The container is gone.")
    return LogTail(lines=read[-lines:] if lines else [], until=until)
