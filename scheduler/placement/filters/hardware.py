"""Rejects hosts whose installed hardware is below the request's minimums ("needs a 32-core host")."""
from __future__ import annotations

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState
from scheduler.placement.units import format_bytes, format_cpus

NAME = "hardware"


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    if request.min_millicpus is not None and host.millicpus < request.min_millicpus:
        return Rejection(NAME, f"has fewer than {format_cpus(request.min_millicpus)} CPUs")
    if request.min_memory is not None and host.memory < request.min_memory:
        return Rejection(NAME, f"has less than {format_bytes(request.min_memory)} memory")
    return None


PLUGIN = FilterPlugin(NAME, static=True, check=check, request_key=lambda request: (request.min_millicpus, request.min_memory))
