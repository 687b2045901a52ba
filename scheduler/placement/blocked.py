"""Hosts already at a service's per-host replica limit, kept in the same sorted order as the group
lists, so a scan can jump over a whole run of them at once instead of stepping host by host.

Anti-affinity (max_per_host) leaves one such host per replica, mostly at the front of the lists
(their load was low when they were picked), so without this a placement costs O(replicas).
"""
from __future__ import annotations

from bisect import bisect_left, insort

from scheduler.placement.index import Entry
from scheduler.placement.state import HostState


class BlockedHosts:
    """For one (service, limit, image): per group number, the sorted entries of hosts at the limit,
    and of those the ones holding the image (a subset of that group's image list)."""

    __slots__ = ("service", "limit", "image", "by_group", "with_image")

    def __init__(self, service: str, limit: int, image: str | None) -> None:
        self.service, self.limit, self.image = service, limit, image
        self.by_group: dict[int, list[Entry]] = {}
        self.with_image: dict[int, list[Entry]] = {}

    def holds(self, host: HostState) -> tuple[bool, bool]:
        """Whether the host is at the limit, and whether it also holds the image."""
        full = host.service_counts.get(self.service, 0) >= self.limit
        return full, full and self.image is not None and self.image in host.images

    def add(self, group: int, host: HostState) -> None:
        full, imaged = self.holds(host)
        if full:
            insort(self.by_group.setdefault(group, []), (host.load, host.index))
        if imaged:
            insort(self.with_image.setdefault(group, []), (host.load, host.index))

    def remove(self, group: int, host: HostState) -> None:
        full, imaged = self.holds(host)
        for lists, member in ((self.by_group, full), (self.with_image, imaged)):
            if member:
                entries = lists[group]
                del entries[bisect_left(entries, (host.load, host.index))]


def skip_forward(entries: list[Entry], at: int, end: int, blocked: list[Entry]) -> int:
    """entries[at] is blocked; return the position after the run of blocked entries it starts.

    `blocked` is a subset of `entries`, both sorted, so entries[at + m - 1] == blocked[j + m - 1]
    holds exactly when the m entries from `at` are all blocked: binary search the largest m.
    """
    first = bisect_left(blocked, entries[at])
    low, high = 1, min(end - at, len(blocked) - first)
    while low < high:
        middle = (low + high + 1) // 2
        if entries[at + middle - 1] == blocked[first + middle - 1]:
            low = middle
        else:
            high = middle - 1
    return at + low


def skip_backward(entries: list[Entry], at: int, blocked: list[Entry]) -> int:
    """entries[at] is blocked; return the position before the run of blocked entries it ends."""
    last = bisect_left(blocked, entries[at])
    low, high = 1, min(at + 1, last + 1)
    while low < high:
        middle = (low + high + 1) // 2
        if entries[at - middle + 1] == blocked[last - middle + 1]:
            low = middle
        else:
            high = middle - 1
    return at - low
