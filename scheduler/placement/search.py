"""Best-first search over the engine's sorted host lists, pruned by score bounds so that it finds
exactly the host the reference placer would: the highest score, ties to the lowest host index.

Within one group (shape and IDC) a host's score is a function of its load, plus the image bonus
when it holds the image; every list is sorted best-first. So the score of a list's next host
bounds every host after it (image holders are bounded in the per-image lists instead). Lists are
scanned in order of the bound at their best host with room, until that bound is below the best
score found; within a list, the scan stops the same way.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from operator import itemgetter

from scheduler.placement.blocked import BlockedHosts, skip_backward, skip_forward
from scheduler.placement.framework import PlacementContext, normalise
from scheduler.placement.index import BOUNDS_PER_LIST, Entry, HostGroup, LoadIndex
from scheduler.placement.model import PlacementRequest
from scheduler.placement.plan import Plan, ProfileShape
from scheduler.placement.profiles import Profile
from scheduler.placement.reference import Found
from scheduler.placement.state import HostState

# How many hosts in a row may fail the filters before a scan re-checks whether the rest of its
# list could still beat the best found: filtering a host is cheaper than bounding its score.
BOUND_EVERY = 8
# Bounds are summed in another order than the exact scores they bound, so they may differ in the
# last bits; this margin keeps a bound from ever dropping below the score it stands for.
BOUND_MARGIN = 1e-9


def find_best(hosts: Sequence[HostState], plan: Plan, shape: ProfileShape, request: PlacementRequest,
              profile: Profile, context: PlacementContext, blocked: BlockedHosts | None) -> Found | None:
    """The fitting host the reference placer would choose, with its score and parts; None if none fits."""
    bounds = profile.bounds(request, context)
    rejected = plan.rejected
    checks = [plugin.check for plugin in shape.dynamic]
    total_of = profile.total
    falling, load_part, image_part = shape.falling, shape.load_part, shape.image_part
    load_raw = profile.scorers[load_part].raw
    load_low, load_high = bounds[load_part]
    image = request.image if image_part is not None else None
    image_present = image_absent = 0.0
    if image_part is not None:
        image_present = normalise(1.0, *bounds[image_part])
        image_absent = normalise(0.0, *bounds[image_part])
    service = request.service
    # Hosts at the service's per-host limit are passed over before any plugin runs: anti-affinity
    # piles them up at the front of the lists. The spread filter would reject them anyway.
    host_limit = request.max_per_host if shape.checks_spread else None
    idc_limit = request.max_per_idc if shape.checks_spread else None

    def parts_at(host: HostState, shared: list[float]) -> list[float]:
        parts = shared.copy()
        parts[load_part] = normalise(load_raw(host, request, context), load_low, load_high)
        return parts

    # A bound is the weighted sum of the parts other than load (`base`, the same for a whole IDC
    # and image variant) plus the load part's share: cheaper than scoring a host in full.
    load_weight = profile.weights[load_part] / profile.weight_sum

    def base_of(shared: list[float]) -> float:
        parts = shared.copy()
        parts[load_part] = 0.0
        return total_of(parts) + BOUND_MARGIN

    def at_limit(index: int) -> bool:
        return host_limit is not None and hosts[index].service_counts.get(service, 0) >= host_limit

    def load_part_of(entry: Entry) -> float:
        return normalise(load_raw(hosts[entry[1]], request, context), load_low, load_high)

    # What a list's cached bound depends on besides the list: the load scorer and its bounds, the
    # request's size, and which hosts are passed over as at the service's limit.
    list_key = (profile.scorers[load_part].name, request.millicpus, request.memory, load_low, load_high,
                None if blocked is None else (blocked.service, blocked.limit))
    # `shared` holds the parts every host of an IDC has in common: all but load and image.
    shared_by_idc: dict[str, tuple[list[float], float, list[float], float]] = {}

    def templates_of(group: HostGroup) -> tuple[list[float], float, list[float], float]:
        """Computed once per IDC per request, from any host of the IDC."""
        shared = profile.parts(group.representative, request, context, bounds)
        with_image = shared
        if image_part is not None:
            shared[image_part] = image_absent
            with_image = shared.copy()
            with_image[image_part] = image_present
        templates = shared_by_idc[group.idc] = (shared, base_of(shared), with_image, base_of(with_image))
        return templates

    def open_head(entries: list[Entry], position: int, end: int, skip: list[Entry] | None) -> int:
        """The first position from `position` towards the worse end not at the service's limit
        (out of range when there is none)."""
        if skip and hosts[entries[position][1]].service_counts.get(service, 0) >= host_limit:
            if falling:
                return skip_forward(entries, position, end, skip)
            return skip_backward(entries, position, skip)
        return position

    # A list's bound is an upper bound on the load part of its hosts with room and not at the
    # service's limit. Falling lists reuse their last exact value, which stays an upper bound:
    # hosts only gain load, and at-limit hosts only multiply (a host joining an image list would
    # break this, so Placer._commit drops that list's values then); scans refresh it. Rising lists
    # get an exact value.

    def falling_bound(entries: list[Entry], cache: dict, limit: int | None, skip: list[Entry] | None) -> float | None:
        value = cache.get(list_key)
        if value is None:
            position = open_head(entries, 0, len(entries), skip)
            if position == len(entries) or (limit is not None and entries[position][0] > limit):
                return None
            if len(cache) >= BOUNDS_PER_LIST:
                cache.clear()
            value = cache[list_key] = load_part_of(entries[position])
        return value

    def rising_bound(entries: list[Entry], cache: dict, limit: int | None,
                     skip: list[Entry] | None) -> tuple[float, int] | None:
        """The bound and how many entries may have room; cached while the list's best entry holds."""
        end = len(entries) if limit is None else bisect_left(entries, (limit + 1,))
        if not end:
            return None
        position = open_head(entries, end - 1, end, skip)
        if position < 0:
            return None
        entry = entries[position]
        cached = cache.get(list_key)
        if cached is None or cached[0] != entry:
            if len(cache) >= BOUNDS_PER_LIST:
                cache.clear()
            cached = cache[list_key] = (entry, load_part_of(entry))
        return cached[1], end

    def add_lists(group: HostGroup, indexes: list[LoadIndex], limit: int | None) -> None:
        """Queue a group's sorted lists (main and image variants) that have a host with room, as
        (bound, entries, end or None, limit, shared, base, holds image, entries at the service's
        limit, the list's bound cache)."""
        shared, base, with_image, image_base = shared_by_idc.get(group.idc) or templates_of(group)
        for index in indexes:
            # The lists of hosts at the service's per-host limit mirror the group-wide lists only.
            skip = skip_image = None
            if blocked is not None and index is group.index:
                skip = blocked.by_group.get(group.number)
                skip_image = blocked.with_image.get(group.number)
            variants = [(index.entries, None, shared, base, False, skip)]
            if image is not None and (bucket := index.by_image.get(image)):
                variants.append((bucket, image, with_image, image_base, True, skip_image))
            for entries, wanted, parts, list_base, holds_image, skipped in variants:
                if not entries:
                    continue
                cache = index.bounds.get(wanted)
                if cache is None:
                    cache = index.bounds[wanted] = {}
                if falling:
                    if limit is not None and entries[0][0] > limit:
                        continue  # no host in this list has room
                    value = cache.get(list_key)
                    if value is None and (value := falling_bound(entries, cache, limit, skipped)) is None:
                        continue
                    end = None
                else:
                    head = rising_bound(entries, cache, limit, skipped)
                    if head is None:
                        continue
                    value, end = head
                lists.append((list_base + load_weight * value, entries, end, limit, parts, list_base,
                              holds_image, skipped, cache))

    # Every list that has a host with room, scanned best bound first.
    lists: list[tuple] = []
    for group, indexes in plan.groups:
        if idc_limit is not None and context.idc_counts.get(group.idc, 0) >= idc_limit:
            continue
        limit = None
        if shape.checks_fit:
            cpu_room, memory_room = group.millicpus - request.millicpus, group.memory - request.memory
            if cpu_room < 0 or memory_room < 0:
                continue
            # A host with room has each allocation at most capacity minus request, so its load is at most:
            limit = cpu_room * group.memory + memory_room * group.millicpus
        add_lists(group, indexes, limit)
    lists.sort(key=itemgetter(0), reverse=True)

    best_host: HostState | None = None
    best_total = 0.0
    best_parts: list[float] = []

    def fits(index: int) -> bool:
        """The dynamic filters (callers test the cheaper static verdict, `rejected`, first)."""
        host = hosts[index]
        if host_limit is not None and host.service_counts.get(service, 0) >= host_limit:
            return False
        for check in checks:
            if check(host, request, context) is not None:
                return False
        return True

    def offer(host: HostState, shared: list[float], holds_image: bool) -> float:
        """Keep a fitting host if it beats the best; returns its score without any image bonus,
        which bounds every host after it in a main list."""
        nonlocal best_host, best_total, best_parts
        parts = parts_at(host, shared)
        upper = total = total_of(parts)
        if not holds_image and image is not None and image in host.images:
            # Met in a main list: score it in full now (its image list would, later) to prune sooner.
            parts[image_part] = image_present
            total = total_of(parts)
        if best_host is None or total > best_total or (total == best_total and host.index < best_host.index):
            best_host, best_total, best_parts = host, total, parts
        return upper

    def beaten(entries: list[Entry], position: int, base: float) -> bool:
        """True when no host from `position` on can beat the best (lists run best-first)."""
        return best_host is not None and base + load_weight * load_part_of(entries[position]) < best_total

    # Equal-load hosts of a list score alike, so only the lowest-index one that fits can win.
    # `skip`, when given, lists the entries at the service's per-host limit, to jump over in bulk.
    def scan_falling(entries: list[Entry], end: int | None, limit: int | None, shared: list[float],
                     base: float, holds_image: bool, skip: list[Entry] | None, cache: dict) -> None:
        if end is None:
            end = len(entries) if limit is None else bisect_left(entries, (limit + 1,))
        # Refresh the list's cached bound, which may be stale (see falling_bound), then check it.
        at = open_head(entries, 0, end, skip)
        if at >= end:
            return
        load_value = cache[list_key] = load_part_of(entries[at])
        if best_host is not None and base + load_weight * load_value < best_total:
            return
        misses = 0
        while at < end:
            load, index = entries[at]
            if rejected[index]:
                at, misses = at + 1, misses + 1
            elif at_limit(index):
                if skip:
                    at, misses = skip_forward(entries, at, end, skip), BOUND_EVERY
                else:
                    at, misses = at + 1, misses + 1
            elif fits(index):
                if offer(hosts[index], shared, holds_image) < best_total:
                    return
                at += 1
                if at < end and entries[at][0] == load:
                    at = bisect_left(entries, (load + 1,), at, end)
                misses = BOUND_EVERY  # later hosts rarely still tie with the best: check at once
            else:
                at, misses = at + 1, misses + 1
            if misses >= BOUND_EVERY and at < end:
                misses = 0
                if beaten(entries, at, base):
                    return

    def scan_rising(entries: list[Entry], end: int, limit: int | None, shared: list[float],
                    base: float, holds_image: bool, skip: list[Entry] | None, cache: dict) -> None:
        at, misses = end - 1, 0
        while at >= 0:
            load, index = entries[at]
            if rejected[index]:
                at, misses = at - 1, misses + 1
            elif at_limit(index):
                if skip:
                    at, misses = skip_backward(entries, at, skip), BOUND_EVERY
                else:
                    at, misses = at - 1, misses + 1
            elif fits(index):
                run_start = at  # runs are walked from the top: look back for a lower index
                if at > 0 and entries[at - 1][0] == load:
                    run_start = bisect_left(entries, (load,), 0, at)
                index = next((entries[earlier][1] for earlier in range(run_start, at)
                              if not rejected[entries[earlier][1]] and fits(entries[earlier][1])), index)
                if offer(hosts[index], shared, holds_image) < best_total:
                    return
                at, misses = run_start - 1, BOUND_EVERY
            else:
                at, misses = at - 1, misses + 1
            if misses >= BOUND_EVERY and at >= 0:
                misses = 0
                if beaten(entries, at, base):
                    return

    scan = scan_falling if falling else scan_rising
    for bound, *item in lists:
        if best_host is not None and bound < best_total:
            break  # bounds are sorted, so no later list can do better either
        scan(*item)
    return None if best_host is None else (best_host, best_total, best_parts)
