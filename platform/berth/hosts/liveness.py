"""Pure liveness rules: what one probe result does to a host's up/down state."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Liveness:
    state: str  # unknown, up, down
    consecutive_failures: int


def after_probe(current: Liveness, answered: bool, failures_for_down: int) -> Liveness:
    """A host is down after `failures_for_down` failed probes in a row, up once it answers."""
    if answered:
        return Liveness("up", 0)
    failures = current.consecutive_failures + 1
    state = "down" if failures >= failures_for_down else current.state
    return Liveness(state, failures)


def is_alive(state: str, last_heartbeat_at: datetime | None, now: datetime,
             stale_after: timedelta) -> bool:
    """Up and heard from recently: a stale heartbeat (probes stopped) counts as not alive."""
    return (state == "up" and last_heartbeat_at is not None
            and now - last_heartbeat_at <= stale_after)
