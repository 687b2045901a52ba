"""What the indexed engine works out once and reuses: a profile's split, and per kind of request
which hosts its static filters reject and which sorted lists to scan."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from scheduler.placement.filters import admin_state, liveness, resource_fit, spread
from scheduler.placement.framework import IMAGE, LOAD_FALLING, LOAD_RISING, PER_IDC, FilterPlugin, PlacementContext
from scheduler.placement.index import HostGroup, LoadIndex
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.profiles import Profile
from scheduler.placement.state import HostState


@dataclass(frozen=True)
class ProfileShape:
    """A profile split the way the engine needs it; refuses profiles it could not rank exactly."""

    static: tuple[FilterPlugin, ...]
    dynamic: tuple[FilterPlugin, ...]
    falling: bool            # True when lower load scores higher (spread)
    load_part: int           # position of the load scorer in the profile's parts
    image_part: int | None   # position of the image scorer in the profile's parts
    checks_fit: bool         # resource_fit runs: hosts without room may be passed over unchecked
    checks_spread: bool      # spread runs: hosts and IDCs at the service's limits likewise

    @classmethod
    def of(cls, profile: Profile) -> ProfileShape:
        def unsupported(why: str) -> ValueError:
            return ValueError(f"profile {profile.name} cannot be indexed ({why}); use ReferencePlacer")

        names = [plugin.name for plugin in profile.filters]
        if liveness.NAME not in names or admin_state.NAME not in names:
            raise unsupported("it must filter on liveness and admin_state")
        statics = [plugin.static for plugin in profile.filters]
        if statics != sorted(statics, reverse=True):
            raise unsupported("static filters must come before dynamic ones")
        kinds = [scorer.kind for scorer in profile.scorers]
        load_parts = [position for position, kind in enumerate(kinds) if kind in (LOAD_FALLING, LOAD_RISING)]
        if len(load_parts) != 1 or kinds.count(IMAGE) > 1 or any(
                kind not in (LOAD_FALLING, LOAD_RISING, PER_IDC, IMAGE) for kind in kinds):
            raise unsupported("it needs exactly one load scorer, at most one image scorer, and per-IDC scorers")
        return cls(
            static=tuple(plugin for plugin in profile.filters if plugin.static),
            dynamic=tuple(plugin for plugin in profile.filters if not plugin.static),
            falling=kinds[load_parts[0]] == LOAD_FALLING,
            load_part=load_parts[0],
            image_part=kinds.index(IMAGE) if IMAGE in kinds else None,
            checks_fit=resource_fit.NAME in names,
            checks_spread=spread.NAME in names,
        )


def plan_key(profile: Profile, request: PlacementRequest) -> tuple:
    """The request fields a static filter may read (see FilterPlugin), with the profile."""
    return (profile.name, request.cluster, request.pool, request.constraints,
            request.min_millicpus, request.min_memory)


@dataclass(frozen=True)
class Plan:
    rejected: list[bool]                          # by host index: a static filter turns it away
    verdicts: list[Rejection | None]              # by class: the first static filter's rejection
    class_members: list[list[HostState]]
    passing_classes: list[int]
    groups: list[tuple[HostGroup, list[LoadIndex]]]  # groups with a passing host, and the lists to scan

    @cached_property
    def static_rejections(self) -> Counter[Rejection]:
        """Hosts per static rejection; wanted only to explain a refusal, so counted on demand."""
        counts: Counter[Rejection] = Counter()
        for members, verdict in zip(self.class_members, self.verdicts):
            if verdict is not None:
                counts[verdict] += len(members)
        return counts

    @classmethod
    def build(cls, shape: ProfileShape, request: PlacementRequest, context: PlacementContext,
              classes: ClassVerdicts, class_of: Sequence[int], groups: Sequence[HostGroup]) -> Plan:
        """Decide the static filters once per class of identical hosts: each class gets the
        rejection of the first static filter that fails it."""
        verdicts: list[Rejection | None] = [None] * len(classes.members)
        for plugin in shape.static:
            found = classes.verdicts(plugin, request, context)
            verdicts = [earlier if earlier is not None else verdict for earlier, verdict in zip(verdicts, found)]
        scanned = []
        for group in groups:
            passing = [class_id for class_id in group.classes if verdicts[class_id] is None]
            if passing:
                scanned.append((group, group.indexes_for(passing)))
        return cls(
            rejected=[verdicts[class_id] is not None for class_id in class_of],
            verdicts=verdicts,
            class_members=classes.members,
            passing_classes=[class_id for class_id, verdict in enumerate(verdicts) if verdict is None],
            groups=scanned,
        )


class ClassVerdicts:
    """The classes of identical hosts, and each static filter's verdicts on all of them, kept per
    request key so that requests agreeing on what a filter reads share its verdicts."""

    _LIMIT = 1024

    def __init__(self, members: list[list[HostState]]) -> None:
        self.members = members
        self._representatives = [hosts[0] for hosts in members]
        self._cache: dict[tuple, list[Rejection | None]] = {}

    def verdicts(self, plugin: FilterPlugin, request: PlacementRequest,
                 context: PlacementContext) -> list[Rejection | None]:
        if plugin.request_key is None:
            return [plugin.check(host, request, context) for host in self._representatives]
        key = (plugin.name, plugin.request_key(request))
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self._LIMIT:
                self._cache.clear()
            check = plugin.check
            found = self._cache[key] = [check(host, request, context) for host in self._representatives]
        return found
