"""The reference placer: every filter and every scorer on every host, in plain loops.

It defines the behaviour the indexed engine must reproduce, and it is the benchmark's baseline.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from scheduler.placement.explain import explain_placed, explain_unplaced
from scheduler.placement.framework import PlacementContext
from scheduler.placement.model import Decision, HostId, HostSnapshot, PlacementRequest, Rejection
from scheduler.placement.profiles import PROFILES, Profile
from scheduler.placement.state import ClusterState, HostState

# What a search returns when something fits: the host, its total score and its per-scorer parts.
Found = tuple[HostState, float, list[float]]


class ReferencePlacer:
    """Places containers one at a time, each pick accounted for before the next."""

    def __init__(self, hosts: Iterable[HostSnapshot], profiles: Mapping[str, Profile] = PROFILES) -> None:
        self.state = ClusterState(hosts)
        self.profiles = dict(profiles)

    def place(self, request: PlacementRequest) -> Decision:
        """Choose a host for one container and record it there, or explain why no host fits."""
        profile = self.profiles[request.strategy]
        context = self.state.context(request)
        found, rejections = self._search(request, profile, context)
        if found is None:
            if rejections is None:
                rejections = self._rejections(request, profile, context)
            explanation = explain_unplaced(rejections, len(self.state.hosts))
            return Decision(None, None, None, {}, explanation, rejections)
        host, total, parts = found
        self._commit(host, request)
        breakdown = profile.breakdown(parts)
        return Decision(host.id, host.name, total, breakdown, explain_placed(host.name, total, breakdown))

    def place_replicas(self, request: PlacementRequest, count: int) -> list[Decision]:
        """Place up to `count` containers; stops at the first that fits nowhere, whose Decision says why."""
        decisions = []
        for _ in range(count):
            decision = self.place(request)
            decisions.append(decision)
            if not decision.placed:
                break
        return decisions

    def current(self, host_id: HostId) -> HostSnapshot:
        """The host as it stands after the placements made so far."""
        return self.state.by_id[host_id].as_snapshot()

    def _search(self, request: PlacementRequest, profile: Profile,
                context: PlacementContext) -> tuple[Found | None, Counter[Rejection] | None]:
        bounds = profile.bounds(request, context)
        rejections: Counter[Rejection] = Counter()
        best: Found | None = None
        for host in self.state.hosts:  # tie-break order, so a strictly higher score is needed to win
            rejection = profile.first_rejection(host, request, context)
            if rejection is not None:
                rejections[rejection] += 1
                continue
            parts = profile.parts(host, request, context, bounds)
            total = profile.total(parts)
            if best is None or total > best[1]:
                best = (host, total, parts)
        return best, (None if best else rejections)

    def _rejections(self, request: PlacementRequest, profile: Profile,
                    context: PlacementContext) -> Counter[Rejection]:
        rejections: Counter[Rejection] = Counter()
        for host in self.state.hosts:
            rejection = profile.first_rejection(host, request, context)
            if rejection is not None:
                rejections[rejection] += 1
        return rejections

    def _commit(self, host: HostState, request: PlacementRequest) -> None:
        self.state.commit(host, request)
