"""Spread scorer: prefers the host left with the largest free share of CPU and memory after placement."""
from __future__ import annotations

from scheduler.placement.framework import LOAD_FALLING, PlacementContext, ScorerPlugin
from scheduler.placement.model import PlacementRequest
from scheduler.placement.state import HostState

NAME = "least_allocated"


def used_share_after(host: HostState, request: PlacementRequest) -> float:
    """Mean of the CPU and memory fractions in use once the container runs.

    Computed as one division of exact integers, so two hosts of the same shape compare exactly
    as their HostState.load does; the indexed engine depends on that.
    """
    used = ((host.allocated_millicpus + request.millicpus) * host.memory
            + (host.allocated_memory + request.memory) * host.millicpus)
    return used / (2 * host.millicpus * host.memory)


def raw(host: HostState, request: PlacementRequest, context: PlacementContext) -> float:
    return 1.0 - used_share_after(host, request)


def bounds(request: PlacementRequest, context: PlacementContext) -> tuple[float, float]:
    return 0.0, 1.0


PLUGIN = ScorerPlugin(NAME, LOAD_FALLING, raw, bounds)
