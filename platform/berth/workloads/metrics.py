"""Sampling container CPU at fleet size: one one-shot stats call per running instance each
period, thousands in flight on one thread, bounded per engine and in all, their starts spread
over part of the period; CPU% (100% = one core) is the delta from the sample the previous
round kept on the instance's row.

Why so: docker's stats take ~1 s one-shot and ~2 s with stream=false (DESIGN.md), so the
old collector (stream=false, 32 threads) needed 65 s at 1,000 containers and would need
~11 minutes at 10,000 (benchmarks/RESULTS.md, "reconcile and CPU sampling at fleet size").
One-shot halves each call, keeping the previous sample makes one call per container enough,
and asyncio makes the calls cheap to hold open.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import resource
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields

from sqlalchemy import select, update

from berth import db
from berth.config import Config
from berth.engine import CpuSample, EngineError, Endpoint, cpu_percent
from berth.hosts.services import endpoint_of
from berth.models import ContainerInstance, Host
from berth.workloads.act import round_robin

# Stats calls in flight on one engine. dockerd answers every one-shot caller from its next
# 1 s collection cycle, so calls waiting together cost it little; 16 keeps a host of 20-50
# containers within the spread window (benchmarks/reconcile.py, 20 per hollow host).
PER_HOST_PARALLEL = 16
# In flight in this process, each one a socket: the file descriptors are the real bound
# (see _open_files_budget), and 10,000 containers spread over 2.5 s need ~4,000 at 1 s each.
# Enforced per engine (PER_HOST_PARALLEL, lowered to MAX_IN_FLIGHT / engines when needed):
# a process-wide semaphore in front of 4,000 calls cost more CPU than it saved.
MAX_IN_FLIGHT = 8192
# Starts are spread evenly over this share of the period (hosts in turn), so neither an
# engine nor this process sees the whole round at once, and the round still ends well
# inside the period: window + one call (~1 s) + the database's share.
SPREAD_SHARE = 0.25
# A kept sample older than this (a missed round, a busy or paused worker) would give a long
# average instead of the recent CPU: the round records no CPU% for it then, only the sample.
# Three periods, but never under a minute: Celery drops a round that waited a whole period
# in the queue, so under load two rounds in a row can easily be a few periods apart.
MAX_GAP_PERIODS = 3.0
MIN_MAX_GAP_S = 60.0
STATS_TIMEOUT_S = 10.0
DISPATCH_TICK_S = 0.02  # calls due within this are started together, without a sleep each
_DEFAULT_INTERVAL_S = next(f.default for f in fields(Config) if f.name == "metrics_interval_s")


@dataclass(frozen=True)
class Target:
    row_id: int
    host_id: int
    ref: str  # the container id (or its name before one is recorded)
    previous: CpuSample | None  # kept from the last round, if it was of this same container


@dataclass(frozen=True)
class Reading:
    row_id: int
    ref: str
    sample: CpuSample | None  # None: gone or not running
    error: str | None = None  # the engine could not be asked


def spread(targets: list[Target], window_s: float) -> list[tuple[float, Target]]:
    """(start offset in s, target): hosts in turn, each host's own order kept, evenly over
    `window_s`, so every engine gets a steady trickle from the start."""
    ordered = round_robin(targets, lambda target: target.host_id)
    step = window_s / len(ordered) if ordered else 0.0
    return [(i * step, target) for i, target in enumerate(ordered)]


def reading(previous: CpuSample | None, current: CpuSample | None, max_gap_s: float
            ) -> float | None:
    """CPU% between two samples of one container, as docker stats computes it; None without
    two samples, across a counter reset, or when the previous one is older than max_gap_s
    (system CPU time runs at online CPUs x wall time)."""
    if previous is None or current is None:
        return None
    gap_s = (current.system_cpu_ns - previous.system_cpu_ns) / max(1, current.online_cpus) / 1e9
    if gap_s > max_gap_s:
        return None
    return cpu_percent(previous, current)


# -> an object with async cpu_sample(endpoint, ref) and async aclose() (berth.engine.stats)
OpenClient = Callable[[int], object]


def _default_open_client(per_host: int):
    from berth.engine.stats import StatsClient  # aiohttp is only needed where engines are used

    return StatsClient(per_host=per_host, timeout_s=STATS_TIMEOUT_S)


async def sample_round(plan: list[tuple[float, Target]], endpoints: dict[int, Endpoint],
                       client) -> list[Reading]:
    """Ask every target's engine for a one-shot sample at its offset (the plan is in offset
    order); the client keeps within its bounds (a call waits for a free lane)."""
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def ask(target: Target) -> Reading:
        try:
            sample = await client.cpu_sample(endpoints[target.host_id], target.ref)
        except EngineError as error:
            return Reading(target.row_id, target.ref, None, str(error)[:300])
        return Reading(target.row_id, target.ref, sample)

    tasks = []
    try:
        for offset, target in plan:
            delay = began + offset - loop.time()
            if delay > DISPATCH_TICK_S:  # start what is due in ticks, not one timer per call
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(ask(target)))
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()  # only those still running, when the round itself failed


class _KeptClient:
    """An event loop on a thread of its own, with one StatsClient, kept for the life of the
    process (a worker child), so the keep-alive connections to the engines outlive a round:
    at 10,000 containers on 500 hosts, opening ~4,500 of them again each round cost about a
    quarter of the round's CPU (benchmarks/RESULTS.md, "reconcile and CPU sampling at fleet
    size")."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = None
        self._shape = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: threads do not fork
                self._loop = asyncio.new_event_loop()
                self._client = self._shape = None
                threading.Thread(target=self._loop.run_forever, name="berth-cpu-sampler",
                                 daemon=True).start()
                if self._pid is None:
                    atexit.register(self.close)
                self._pid = os.getpid()
            return self._loop

    def run(self, plan, endpoints, per_host: int, timeout_s: float):
        async def go():
            if self._shape != per_host:
                if self._client is not None:
                    await self._client.aclose()
                self._client = _default_open_client(per_host)
                self._shape = per_host
            return await sample_round(plan, endpoints, self._client)

        future = asyncio.run_coroutine_threadsafe(go(), self._running_loop())
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        """Close the kept connections (at exit, or when a caller wants them gone)."""
        with self._lock:
            loop, client, mine = self._loop, self._client, self._pid == os.getpid()
            self._client = self._shape = None
        if loop is not None and client is not None and mine and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(5)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass


_KEPT = _KeptClient()


def _open_files_budget() -> int:
    """Sockets this round may hold: the soft limit, raised to the hard one when that helps,
    less a reserve for the database, the broker and the rest of the process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_IN_FLIGHT + 1024
    if soft < wanted and (hard == resource.RLIM_INFINITY or soft < hard):
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    return max(16, soft - 256)


def collect_cpu(config: Config | None = None, *, open_client: OpenClient | None = None,
                window_s: float | None = None) -> int:
    """Record CPU% (100% = one core) on every running instance of an up host, from one
    one-shot sample each and the one kept from the round before; returns how many got one.
    A fresh container gets its first CPU% one round after it is first sampled. `open_client`
    (per_host) -> a client for this round only; by default the process keeps one
    (see _KeptClient)."""
    interval = config.metrics_interval_s if config else _DEFAULT_INTERVAL_S
    window_s = interval * SPREAD_SHARE if window_s is None else window_s
    rows = db.session.execute(
        select(ContainerInstance.id, ContainerInstance.host_id, ContainerInstance.name,
               ContainerInstance.container_id, ContainerInstance.cpu_sample_container_id,
               ContainerInstance.cpu_sample_usage_ns, ContainerInstance.cpu_sample_system_ns)
        .join(Host, Host.id == ContainerInstance.host_id)
        .where(ContainerInstance.state == "running", Host.liveness == "up")).all()
    host_ids = {row.host_id for row in rows}
    endpoints = {h.id: endpoint_of(h, timeout_s=STATS_TIMEOUT_S)
                 for h in db.session.scalars(select(Host).where(Host.id.in_(host_ids)))} \
        if host_ids else {}
    targets = []
    for row in rows:
        ref = row.container_id or row.name
        kept = row.cpu_sample_container_id == ref and row.cpu_sample_usage_ns is not None \
            and row.cpu_sample_system_ns is not None
        targets.append(Target(row.id, row.host_id, ref, CpuSample(
            row.cpu_sample_usage_ns, row.cpu_sample_system_ns, 0) if kept else None))
    db.session.commit()  # nothing held while the engines answer
    if not targets:
        return 0
    budget = _open_files_budget()
    per_host = max(1, min(PER_HOST_PARALLEL,
                          min(MAX_IN_FLIGHT, budget) // max(1, len(endpoints))))
    plan = spread(targets, window_s)
    if open_client is None:
        readings = _KEPT.run(plan, endpoints, per_host,
                             timeout_s=window_s + 3 * STATS_TIMEOUT_S + 30)
    else:
        async def once():
            client = open_client(per_host)
            try:
                return await sample_round(plan, endpoints, client)
            finally:
                await client.aclose()
        readings = asyncio.run(once())
    previous = {t.row_id: t.previous for t in targets}
    max_gap_s = max(MIN_MAX_GAP_S, MAX_GAP_PERIODS * interval)
    changes, recorded = [], 0
    for item in readings:
        percent = reading(previous[item.row_id], item.sample, max_gap_s)
        change = {"id": item.row_id, "cpu_percent": percent}
        if item.sample is not None:
            change.update(cpu_sample_container_id=item.ref,
                          cpu_sample_usage_ns=item.sample.container_cpu_ns,
                          cpu_sample_system_ns=item.sample.system_cpu_ns)
        elif item.error is None:  # gone or stopped: its old sample means nothing any more
            change.update(cpu_sample_container_id=None, cpu_sample_usage_ns=None,
                          cpu_sample_system_ns=None)
        # An engine that did not answer keeps the old sample: next round spans two periods.
        changes.append(change)
        recorded += percent is not None
    for start in range(0, len(changes), 1000):
        batch = changes[start:start + 1000]
        keys = {frozenset(c) for c in batch}
        for shape in keys:  # one executemany per set of columns
            db.session.execute(update(ContainerInstance),
                               [c for c in batch if frozenset(c) == shape])
    return recorded
