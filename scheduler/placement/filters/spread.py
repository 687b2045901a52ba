"""Rejects hosts that would exceed the service's replica limit per host or per IDC."""
from __future__ import annotations

from functools import lru_cache

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState

NAME = "spread"


@lru_cache(maxsize=4096)
def host_full(limit: int, service: str) -> Rejection:
    return Rejection(NAME, f"already {limit} of service {service} on host")


@lru_cache(maxsize=4096)
def idc_full(limit: int, service: str, idc: str) -> Rejection:
    return Rejection(NAME, f"already {limit} of service {service} in idc {idc}")


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    limit = request.max_per_host
    if limit is not None and host.service_counts.get(request.service, 0) >= limit:
        return host_full(limit, request.service)
    limit = request.max_per_idc
    if limit is not None and context.idc_counts.get(host.idc, 0) >= limit:
        return idc_full(limit, request.service, host.idc)
    return None


PLUGIN = FilterPlugin(NAME, static=False, check=check)
