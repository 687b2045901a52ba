"""Rejects hosts outside the cluster and pool the request is pinned to."""
from __future__ import annotations

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState

NAME = "cluster_pool"


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    if request.cluster is not None and host.cluster != request.cluster:
        return Rejection(NAME, f"not in cluster {request.cluster}")
    if request.pool is not None and host.pool != request.pool:
        return Rejection(NAME, f"not in pool {request.pool}")
    return None


PLUGIN = FilterPlugin(NAME, static=True, check=check, request_key=lambda request: (request.cluster, request.pool))
