"""Rejects hosts whose labels fail one of the request's constraints; names the first one unmet."""
from __future__ import annotations

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState

NAME = "labels"


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    for constraint in request.constraints:
        if not constraint.matches(host.labels):
            return Rejection(NAME, f"label {constraint} not met")
    return None


PLUGIN = FilterPlugin(NAME, static=True, check=check, request_key=lambda request: request.constraints)
