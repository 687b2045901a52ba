"""The engine's sorted host lists: hosts of one shape and IDC, ordered best-first by load."""
from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

from scheduler.placement.state import HostState

# Cost of starting the scan of one more sorted list, counted in hosts stepped over.
HEAD_COST = 4.0
Entry = tuple[int, int]  # (load, host index): sorting entries ranks hosts of one group best-first
BOUNDS_PER_LIST = 256  # cached bounds per list, one per request size and limit


class LoadIndex:
    """Hosts sorted by (load, index), and per image the subset of them that hold that image."""

    __slots__ = ("entries", "by_image", "bounds")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.by_image: dict[str, list[Entry]] = {}
        # The search's bound caches, per image list (None: the main list): see search.py.
        self.bounds: dict[str | None, dict] = {}

    def forget_bounds(self, image: str) -> None:
        """A host joined the image's list: it may be better than the cached bounds allow for."""
        self.bounds.pop(image, None)

    def add(self, load: int, index: int, images: Iterable[str]) -> None:
        key = (load, index)
        insort(self.entries, key)
        for image in images:
            bucket = self.by_image.get(image)
            if bucket is None:
                self.by_image[image] = [key]
            else:
                insort(bucket, key)

    def remove(self, load: int, index: int, images: Iterable[str]) -> None:
        key = (load, index)
        _delete(self.entries, key)
        for image in images:
            bucket = self.by_image[image]
            _delete(bucket, key)
            if not bucket:
                del self.by_image[image]


def _delete(entries: list[Entry], key: Entry) -> None:
    position = bisect_left(entries, key)
    if position == len(entries) or entries[position] != key:
        raise RuntimeError(f"placement index out of step: {key} missing")
    del entries[position]


class HostGroup:
    """Schedulable hosts of one shape in one IDC, where equal load means equal score.

    Indexed three ways so a request scans few hosts that its static filters reject: all of the
    group together, per (cluster, pool), and per class of identical hosts.
    """

    __slots__ = ("number", "millicpus", "memory", "idc", "representative", "size", "index", "partitions",
                 "partition_sizes", "classes", "class_sizes", "class_partition")

    def __init__(self, number: int, representative: HostState) -> None:
        self.number = number
        self.millicpus, self.memory, self.idc = representative.millicpus, representative.memory, representative.idc
        self.representative = representative
        self.size = 0
        self.index = LoadIndex()
        self.partitions: dict[tuple[str, str], LoadIndex] = {}
        self.partition_sizes: dict[tuple[str, str], int] = {}
        self.classes: dict[int, LoadIndex] = {}
        self.class_sizes: dict[int, int] = {}
        self.class_partition: dict[int, tuple[str, str]] = {}

    def join(self, host: HostState, class_id: int) -> tuple[LoadIndex, ...]:
        """Register a host; returns the indexes it must be kept in."""
        partition = (host.cluster, host.pool)
        self.size += 1
        self.partition_sizes[partition] = self.partition_sizes.get(partition, 0) + 1
        self.class_sizes[class_id] = self.class_sizes.get(class_id, 0) + 1
        self.class_partition[class_id] = partition
        return (self.index, self.partitions.setdefault(partition, LoadIndex()),
                self.classes.setdefault(class_id, LoadIndex()))

    def indexes_for(self, passing: list[int]) -> list[LoadIndex]:
        """The cheapest indexes covering the passing classes: a head costs about as much as
        checking a few hosts, and a coarse index makes the scan step over rejected ones."""
        passing_size = sum(self.class_sizes[class_id] for class_id in passing)
        partitions = sorted({self.class_partition[class_id] for class_id in passing})
        partitions_size = sum(self.partition_sizes[partition] for partition in partitions)
        options = [
            (HEAD_COST + self.size / passing_size, [self.index]),
            (HEAD_COST * len(partitions) + partitions_size / passing_size,
             [self.partitions[partition] for partition in partitions]),
            (HEAD_COST * len(passing) + 1.0, [self.classes[class_id] for class_id in passing]),
        ]
        return min(options, key=lambda option: option[0])[1]
