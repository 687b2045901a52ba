"""Whether the fleet or the control plane is sick: when most hosts look down at once, the
likelier fault is Berth's own probes, its network or its database, and evicting would
replace healthy containers everywhere (the Kubernetes node lifecycle controller stops
evicting in a zone with 55% or more unready nodes, and everywhere when all zones look down)."""
from __future__ import annotations

from collections.abc import Iterable

from scheduler.orchestration.state import HostFacts

PAUSE_AT_UNREADY_SHARE = 0.55


def eviction_pause(hosts: Iterable[HostFacts]) -> str | None:
    """The reason to evict nothing this round, or None when evicting is safe."""
    counted = [h for h in hosts if not h.maintenance]
    down = [h for h in counted if not h.alive]
    if not counted or not down or len(down) / len(counted) < PAUSE_AT_UNREADY_SHARE:
        return None
    return (f"not evicting: {len(down)} of {len(counted)} hosts look down at once "
            f"({PAUSE_AT_UNREADY_SHARE:.0%} or more), so Berth suspects its own probes or "
            f"network rather than the fleet; their containers stay recorded as they were")
