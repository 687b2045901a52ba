"""The plugin contract: what a filter and a scorer are, and the one normaliser that puts scores on 0..100."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scheduler.placement.model import PlacementRequest, Rejection

if TYPE_CHECKING:
    from scheduler.placement.state import HostState

MAX_SCORE = 100.0

# How a score varies between hosts. The indexed engine relies on this to rank hosts without
# scoring all of them; the reference placer ignores it.
# A load scorer's raw reads only the host's capacity and allocations and the request's cpus and memory.
LOAD_FALLING = "load_falling"  # within one host shape (cpus, memory), non-increasing in HostState.load
LOAD_RISING = "load_rising"    # within one host shape, non-decreasing in HostState.load
PER_IDC = "per_idc"            # equal for all hosts of one IDC
IMAGE = "image"                # raw is 1.0 on hosts holding the request's image, 0.0 elsewhere
SCORE_KINDS = (LOAD_FALLING, LOAD_RISING, PER_IDC, IMAGE)


@dataclass(frozen=True, slots=True)
class PlacementContext:
    """Cluster-wide facts a plugin may need beyond one host: replicas of the request's service per IDC."""

    idc_counts: Mapping[str, int]


Check = Callable[["HostState", PlacementRequest, PlacementContext], Rejection | None]
Raw = Callable[["HostState", PlacementRequest, PlacementContext], float]
Bounds = Callable[[PlacementRequest, PlacementContext], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class FilterPlugin:
    """A predicate: None when the host may take the container, else the Rejection saying why not.

    A static filter reads only HostState.fixed_facts() and the request's cluster, pool,
    constraints, min_cpus and min_memory, so the engine may decide it once per group of hosts.
    It may also name, as `request_key`, the part of a request its verdicts depend on, so that
    requests agreeing on it share them.
    """

    name: str
    static: bool
    check: Check
    request_key: Callable[[PlacementRequest], Hashable] | None = None


@dataclass(frozen=True, slots=True)
class ScorerPlugin:
    """A raw score (higher is better) within bounds fixed per request, so a host's score never
    depends on which other hosts survived filtering."""

    name: str
    kind: str
    raw: Raw
    bounds: Bounds


def normalise(raw: float, low: float, high: float) -> float:
    """Map raw from [low, high] onto [0, MAX_SCORE]; when every host must score alike, give all the maximum."""
    if high <= low:
        return MAX_SCORE
    score = (raw - low) / (high - low) * MAX_SCORE
    return 0.0 if score < 0.0 else MAX_SCORE if score > MAX_SCORE else score
