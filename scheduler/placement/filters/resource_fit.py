"""Rejects hosts without enough unallocated CPU or memory for the container."""
from __future__ import annotations

from functools import lru_cache

from scheduler.placement.framework import FilterPlugin, PlacementContext
from scheduler.placement.model import PlacementRequest, Rejection
from scheduler.placement.state import HostState
from scheduler.placement.units import format_bytes, format_cpus

NAME = "resource_fit"


# Rejections are built once per distinct request size: a busy scan rejects the same way many times.
@lru_cache(maxsize=1024)
def lack_cpus(millicpus: int) -> Rejection:
    return Rejection(NAME, f"lack {format_cpus(millicpus)} CPUs")


@lru_cache(maxsize=1024)
def lack_memory(memory: int) -> Rejection:
    return Rejection(NAME, f"lack {format_bytes(memory)} memory")


def check(host: HostState, request: PlacementRequest, context: PlacementContext) -> Rejection | None:
    # The reason names what was asked for, not each host's shortfall, so hosts group under one line.
    if host.allocated_millicpus + request.millicpus > host.millicpus:
        return lack_cpus(request.millicpus)
    if host.allocated_memory + request.memory > host.memory:
        return lack_memory(request.memory)
    return None


PLUGIN = FilterPlugin(NAME, static=False, check=check)
