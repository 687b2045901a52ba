"""Rejects hosts an operator has taken out of rotation: only `active` hosts accept new containers."""
from __future__ import annotations

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState

NAME = "admin_state"
REJECTIONS = {
    "paused": Rejection(NAME, "paused"),
    "draining": Rejection(NAME, "draining"),
    "maintenance": Rejection(NAME, "in maintenance"),
}


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    if host.admin_state == "active":
        return None
    return REJECTIONS.get(host.admin_state) or Rejection(NAME, host.admin_state)


PLUGIN = FilterPlugin(NAME, static=True, check=check, request_key=lambda request: ())
