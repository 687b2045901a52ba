"""Strategies as profiles: which filters run in which order, and which scorers with which weights."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.placement.filters import DEFAULT_FILTERS, FILTERS
from scheduler.placement.framework import FilterPlugin, PlacementContext, ScorerPlugin, normalise
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.scorers import SCORERS
from scheduler.placement.state import HostState


@dataclass(frozen=True)
class Profile:
    """A placement strategy: the filters in the order they run, the scorers and their weights."""

    name: str
    filters: tuple[FilterPlugin, ...]
    scorers: tuple[ScorerPlugin, ...]
    weights: tuple[float, ...]
    weight_sum: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight_sum", sum(self.weights))

    @classmethod
    def build(cls, name: str, filters: Sequence[str], weighted_scorers: Sequence[tuple[str, float]]) -> Profile:
        if any(weight <= 0 for _, weight in weighted_scorers):
            raise ValueError(f"profile {name}: scorer weights must be positive")
        unknown = [plugin for plugin in filters if plugin not in FILTERS]
        unknown += [scorer for scorer, _ in weighted_scorers if scorer not in SCORERS]
        if unknown:
            raise ValueError(f"profile {name}: no plugin named {', '.join(unknown)}")
        return cls(
            name,
            tuple(FILTERS[filter_name] for filter_name in filters),
            tuple(SCORERS[scorer_name] for scorer_name, _ in weighted_scorers),
            tuple(float(weight) for _, weight in weighted_scorers),
        )

    def first_rejection(self, host: HostState, request: PlacementRequest,
                        context: PlacementContext) -> Rejection | None:
        for plugin in self.filters:
            rejection = plugin.check(host, request, context)
            if rejection is not None:
                return rejection
        return None

    def bounds(self, request: PlacementRequest, context: PlacementContext) -> list[tuple[float, float]]:
        return [scorer.bounds(request, context) for scorer in self.scorers]

    def parts(self, host: HostState, request: PlacementRequest, context: PlacementContext,
              bounds: list[tuple[float, float]]) -> list[float]:
        """Each scorer's normalised 0..100 score for the host, in profile order."""
        return [normalise(scorer.raw(host, request, context), low, high)
                for scorer, (low, high) in zip(self.scorers, bounds)]

    def total(self, parts: Sequence[float]) -> float:
        """Weighted mean of the parts, still on 0..100. Every placer sums in this one order, so
        equal inputs give bit-equal totals and the engines agree on ties."""
        total = 0.0
        for weight, part in zip(self.weights, parts):
            total += weight * part
        return total / self.weight_sum

    def breakdown(self, parts: Sequence[float]) -> dict[str, float]:
        return {scorer.name: part for scorer, part in zip(self.scorers, parts)}


# Image locality is a tie-breaker-sized nudge: about 9 points, worth less than a tenth of a host's capacity.
PROFILES: dict[str, Profile] = {
    "spread": Profile.build("spread", DEFAULT_FILTERS,
                            [("least_allocated", 1.0), ("image_locality", 0.2), ("idc_balance", 1.0)]),
    "binpack": Profile.build("binpack", DEFAULT_FILTERS, [("most_allocated", 1.0), ("image_locality", 0.2)]),
}
