"""Rejects hosts whose agent is not reporting: a down host cannot start anything."""
from __future__ import annotations

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState

NAME = "liveness"
DOWN = Rejection(NAME, "down")


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    return None if host.alive else DOWN


PLUGIN = FilterPlugin(NAME, static=True, check=check, request_key=lambda request: ())
