"""Rejects hosts where a host port the container publishes is already taken."""
from __future__ import annotations

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState

NAME = "ports"


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    if request.ports and not request.ports.isdisjoint(host.ports):
        return Rejection(NAME, f"port {min(request.ports & host.ports)} in use")
    return None


PLUGIN = FilterPlugin(NAME, static=False, check=check)
