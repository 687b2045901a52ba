"""Prefers IDCs holding fewer replicas of the service, so one data-centre outage takes fewer of them."""
from __future__ import annotations

from scheduler.placement.framework import PER_IDC, PlacementContext, ScorerPlugin
from scheduler.placement.model import PlacementRequest
from scheduler.placement.state import HostState

NAME = "idc_balance"


def raw(host: HostState, request: PlacementRequest, context: PlacementContext) -> float:
    return -float(context.idc_counts.get(host.idc, 0))


def bounds(request: PlacementRequest, context: PlacementContext) -> tuple[float, float]:
    # The fullest IDC scores 0 and an IDC without replicas 100; with no replicas anywhere all tie.
    return -float(max(context.idc_counts.values(), default=0)), 0.0


PLUGIN = ScorerPlugin(NAME, PER_IDC, raw, bounds)
