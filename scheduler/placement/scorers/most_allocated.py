"""Binpack scorer: prefers the host left with the largest used share of CPU and memory after placement."""
from __future__ import annotations

from scheduler.placement.framework import LOAD_RISING, PlacementContext, ScorerPlugin
from scheduler.placement.model import PlacementRequest
from scheduler.placement.scorers.least_allocated import used_share_after
from scheduler.placement.state import HostState

NAME = "most_allocated"


def raw(host: HostState, request: PlacementRequest, context: PlacementContext) -> float:
    return used_share_after(host, request)


def bounds(request: PlacementRequest, context: PlacementContext) -> tuple[float, float]:
    return 0.0, 1.0


PLUGIN = ScorerPlugin(NAME, LOAD_RISING, raw, bounds)
