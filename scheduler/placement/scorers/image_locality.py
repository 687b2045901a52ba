"""Prefers hosts that already hold the container's image, so it starts without a pull."""
from __future__ import annotations

from scheduler.placement.framework import IMAGE, PlacementContext, ScorerPlugin
from scheduler.placement.model import PlacementRequest
from scheduler.placement.state import HostState

NAME = "image_locality"


def raw(host: HostState, request: PlacementRequest, context: PlacementContext) -> float:
    return 1.0 if request.image is not None and request.image in host.images else 0.0


def bounds(request: PlacementRequest, context: PlacementContext) -> tuple[float, float]:
    return 0.0, 1.0


PLUGIN = ScorerPlugin(NAME, IMAGE, raw, bounds)
