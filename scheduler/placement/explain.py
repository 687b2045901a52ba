"""Human explanations of a decision, in the shape of "0 of 5 hosts fit: 3 down, 2 lack 2.0 CPUs"."""
from __future__ import annotations

from collections import Counter

from scheduler.placement.model import Rejection


def explain_unplaced(rejections: Counter[Rejection], total_hosts: int) -> str:
    """Hosts grouped by the reason they were rejected, largest group first, then alphabetically."""
    noun = "host" if total_hosts == 1 else "hosts"
    if total_hosts == 0:
        return "0 of 0 hosts fit: no hosts known"
    by_reason: Counter[str] = Counter()
    for rejection, count in rejections.items():
        by_reason[rejection.reason] += count
    groups = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    return f"0 of {total_hosts} {noun} fit: " + ", ".join(f"{count} {reason}" for reason, count in groups)


def explain_placed(host_name: str, score: float, breakdown: dict[str, float]) -> str:
    parts = ", ".join(f"{name} {value:.1f}" for name, value in breakdown.items())
    return f"placed on {host_name} (score {score:.1f}: {parts})"
