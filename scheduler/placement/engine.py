"""The indexed placer: the reference placer's exact decisions, found without scoring every host.

Why hosts can be skipped (exactly; nothing is sampled):
- Hosts with equal fixed facts form a class. Static filters are decided once per class for each
  distinct (cluster, pool, constraints, minimums) a request carries, and the verdicts are cached.
- Schedulable hosts are grouped by shape (cpus, memory) and IDC, and kept sorted by load, where
  within a group the scores fall (or, for binpack, rise) with load; see search.py.
- Hosts at a service's per-host limit are tracked per service, so scans jump over them; see blocked.py.
When nothing fits, every host is still accounted for, so the explanation is the reference's.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from scheduler.placement.blocked import BlockedHosts
from scheduler.placement.framework import PlacementContext
from scheduler.placement.index import HostGroup, LoadIndex
from scheduler.placement.model import HostSnapshot, PlacementRequest, Rejection
from scheduler.placement.plan import ClassVerdicts, Plan, ProfileShape, plan_key
from scheduler.placement.profiles import PROFILES, Profile
from scheduler.placement.reference import Found, ReferencePlacer
from scheduler.placement.search import find_best
from scheduler.placement.state import HostState

_PLAN_CACHE_LIMIT = 4096


class Placer(ReferencePlacer):
    """Same decisions as ReferencePlacer, at a fraction of the cost per placement.

    Building one indexes the hosts (tens of milliseconds for thousands of hosts), and the first
    request of each kind classifies them; both pay off over many placements.
    """

    def __init__(self, hosts: Iterable[HostSnapshot], profiles: Mapping[str, Profile] = PROFILES) -> None:
        super().__init__(hosts, profiles)
        self._shapes = {name: ProfileShape.of(profile) for name, profile in self.profiles.items()}
        class_ids: dict[tuple, int] = {}
        self._class_of: list[int] = []
        self._class_members: list[list[HostState]] = []
        self._group_of: list[HostGroup | None] = []
        self._indexes_of: list[tuple[LoadIndex, ...]] = []
        groups: dict[tuple, HostGroup] = {}
        for host in self.state.hosts:
            class_id = class_ids.setdefault(host.fixed_facts(), len(class_ids))
            if class_id == len(self._class_members):
                self._class_members.append([])
            self._class_members[class_id].append(host)
            self._class_of.append(class_id)
            group, indexes = None, ()
            if host.schedulable:  # the others never pass liveness or admin_state, so need no index
                key = (host.millicpus, host.memory, host.idc)
                group = groups.get(key) or groups.setdefault(key, HostGroup(len(groups), host))
                indexes = group.join(host, class_id)
                for index in indexes:
                    index.add(host.load, host.index, host.images)
            self._group_of.append(group)
            self._indexes_of.append(indexes)
        self._groups = list(groups.values())
        self._classes = ClassVerdicts(self._class_members)
        self._plans: dict[tuple, Plan] = {}
        self._blocked: dict[tuple, BlockedHosts] = {}
        self._blocked_by_service: dict[str, list[BlockedHosts]] = {}

    def _plan(self, profile: Profile, request: PlacementRequest, context: PlacementContext) -> Plan:
        key = plan_key(profile, request)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _PLAN_CACHE_LIMIT:
                self._plans.clear()
            plan = self._plans[key] = Plan.build(self._shapes[profile.name], request, context,
                                                 self._classes, self._class_of, self._groups)
        return plan

    def _blocked_hosts(self, request: PlacementRequest) -> BlockedHosts:
        """The hosts at the request's per-host limit, tracked from first use on."""
        key = (request.service, request.max_per_host, request.image)
        blocked = self._blocked.get(key)
        if blocked is None:
            blocked = self._blocked[key] = BlockedHosts(*key)
            self._blocked_by_service.setdefault(request.service, []).append(blocked)
            for host in self.state.hosts:
                group = self._group_of[host.index]
                if group is not None and request.service in host.service_counts:
                    blocked.add(group.number, host)
        return blocked

    def _search(self, request: PlacementRequest, profile: Profile,
                context: PlacementContext) -> tuple[Found | None, Counter[Rejection] | None]:
        plan = self._plan(profile, request, context)
        shape = self._shapes[profile.name]
        blocked = self._blocked_hosts(request) if shape.checks_spread and request.max_per_host else None
        return find_best(self.state.hosts, plan, shape, request, profile, context, blocked), None

    def _rejections(self, request: PlacementRequest, profile: Profile,
                    context: PlacementContext) -> Counter[Rejection]:
        """Static rejections come per class from the plan; only hosts passing those are checked."""
        plan = self._plan(profile, request, context)
        checks = [plugin.check for plugin in self._shapes[profile.name].dynamic]
        rejections = Counter(plan.static_rejections)
        for class_id in plan.passing_classes:
            for host in self._class_members[class_id]:
                for check in checks:
                    rejection = check(host, request, context)
                    if rejection is not None:
                        rejections[rejection] += 1
                        break
                else:
                    raise RuntimeError(f"indexed search missed host {host.name}, which fits")
        return rejections

    def _commit(self, host: HostState, request: PlacementRequest) -> None:
        group, indexes = self._group_of[host.index], self._indexes_of[host.index]
        # Only trackers of services on this host (or of the one arriving) can hold or gain it.
        services = {request.service, *host.service_counts}
        trackers = [blocked for service in services for blocked in self._blocked_by_service.get(service, ())]
        load, images = host.load, tuple(host.images)
        for index in indexes:
            index.remove(load, host.index, images)
        for blocked in trackers:
            blocked.remove(group.number, host)
        self.state.commit(host, request)
        # ClusterState.commit does not count an image being pulled as present; should it ever
        # add one, the host joins that image's lists and their cached bounds must go.
        gained = set(host.images).difference(images)
        for index in indexes:
            index.add(host.load, host.index, host.images)
            for image in gained:
                index.forget_bounds(image)
        for blocked in trackers:
            blocked.add(group.number, host)
