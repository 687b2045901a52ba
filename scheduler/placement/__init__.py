"""Pure placement: choose a live host with the right hardware and free capacity, or say why none fits.

Plain data in (HostSnapshot, PlacementRequest), decisions out (Decision); no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable

from scheduler.placement.constraints import Constraint, parse_constraint, parse_constraints
from scheduler.placement.engine import Placer
from scheduler.placement.model import Decision, HostSnapshot, PlacementRequest, Rejection
from scheduler.placement.profiles import PROFILES, Profile
from scheduler.placement.reference import ReferencePlacer

__all__ = [
    "Constraint", "Decision", "HostSnapshot", "PROFILES", "PlacementRequest", "Placer", "Profile",
    "ReferencePlacer", "Rejection", "parse_constraint", "parse_constraints", "place", "place_replicas",
]


# Both placers decide identically; building the engine's indexes costs about as much as a few
# reference placements, so it only pays for itself beyond that.
_INDEX_FROM = 8


def place(request: PlacementRequest, hosts: Iterable[HostSnapshot]) -> Decision:
    """Where one container of `request` should go on `hosts` as they stand."""
    return ReferencePlacer(hosts).place(request)


def place_replicas(request: PlacementRequest, count: int, hosts: Iterable[HostSnapshot]) -> list[Decision]:
    """Place `count` containers one after another, each seeing the ones before it.

    Stops at the first container that fits nowhere; that last Decision explains why.
    For a long stream of mixed requests, keep one Placer and call its place() instead.
    """
    placer = Placer if count >= _INDEX_FROM else ReferencePlacer
    return placer(hosts).place_replicas(request, count)
