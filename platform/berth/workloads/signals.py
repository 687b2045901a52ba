"""Release signals: each instance's log lines, those matching its service's error pattern, and
its memory in use, sampled only for services with a release under way (the canary analysis
compares them, scheduler.orchestration.rollout)."""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from berth import db
from berth.clock import utcnow
from berth.config import Config
from berth.engine import Endpoint, EngineError
from berth.hosts.services import Connect, default_connect, endpoint_of
from berth.models import ContainerInstance, Host, Release, Service
from berth.workloads.act import _Lanes, round_robin

log = logging.getLogger(__name__)

ACTIVE_RELEASES = ("running", "waiting", "paused")
DEFAULT_ERROR_PATTERN = "ERROR|WARN"
ENGINE_TIMEOUT_S = 10.0
# A look reads lines stamped up to this long before it starts. dockerd stamps a line when it
# reads it from the container and writes it to the log a moment later, so a line stamped just
# before `until` may not be readable yet when the call lands, and would never be read again;
# the margin also absorbs a small skew between this clock and the engine's.
SETTLE_S = 1.0


@dataclass(frozen=True)
class Look:
    """One instance to read, with what its row said when read (written back only if unchanged)."""

    row_id: int
    host_id: int
    service_id: int
    container_id: str
    read_at: datetime | None  # the row's logs_read_at
    counted: str | None  # the row's logs_container_id
    since: datetime | None  # None: from the container's start
    fresh: bool  # a container not counted yet: its counts restart from 0


@dataclass(frozen=True)
class Seen:
    row_id: int
    lines: int | None = None  # None: the container is gone
    errors: int = 0
    memory: int | None = None
    error: str | None = None  # the engine could not be asked


def error_matcher(pattern: str | None) -> re.Pattern:
    """The service's error pattern, or the default when it is empty or does not compile."""
    try:
        return re.compile(pattern or DEFAULT_ERROR_PATTERN)
    except re.error as error:
        log.warning("error pattern %r does not compile (%s): using %r", pattern, error,
                    DEFAULT_ERROR_PATTERN)
        return re.compile(DEFAULT_ERROR_PATTERN)


def count(lines: list[str], matcher: re.Pattern) -> tuple[int, int]:
    """(lines, lines the matcher finds something in)."""
    return len(lines), sum(1 for line in lines if matcher.search(line))


def look_of(row, floor: datetime | None) -> Look:
    """Where the next read starts: where the last one of this same container ended; for a
    container not counted yet, its start, or the start of its service's release when it is
    older (a baseline instance may hold weeks of log, and the analysis only compares counts
    from the release on)."""
    fresh = row.logs_container_id != row.container_id or row.logs_read_at is None
    return Look(row.id, row.host_id, row.service_id, row.container_id, row.logs_read_at,
                row.logs_container_id, floor if fresh else row.logs_read_at, fresh)


def _unix(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def _is(column, value):
    return column.is_(None) if value is None else column == value


def sample_signals(config: Config | None, *, connect: Connect = default_connect,
                   now: datetime | None = None) -> dict:
    """Add each release instance's new log lines and error lines since its last look, and
    record its memory in use; returns {"instances", "lines", "errors", "failures"}. No
    transaction is open while the engines answer; a host that fails is skipped this round."""
    until = (now or utcnow()) - timedelta(seconds=SETTLE_S)
    floors = dict(db.session.execute(
        select(Release.service_id, func.min(Release.created_at))
        .where(Release.status.in_(ACTIVE_RELEASES)).group_by(Release.service_id)).all())
    rows = db.session.execute(
        select(ContainerInstance.id, ContainerInstance.host_id, ContainerInstance.service_id,
               ContainerInstance.container_id, ContainerInstance.logs_read_at,
               ContainerInstance.logs_container_id, Service.error_pattern)
        .join(Service, Service.id == ContainerInstance.service_id)
        .join(Host, Host.id == ContainerInstance.host_id)
        .where(ContainerInstance.state == "running", ContainerInstance.container_id.is_not(None),
               ContainerInstance.service_id.in_(list(floors)), Host.liveness != "down")).all() \
        if floors else []
    looks = [look_of(row, floors[row.service_id]) for row in rows]
    # A clock that went back since the last look: nothing to read until it catches up.
    looks = [look for look in looks if look.since is None or look.since < until]
    matchers = {row.service_id: row.error_pattern for row in rows}
    matchers = {service_id: error_matcher(pattern) for service_id, pattern in matchers.items()}
    hosts = {look.host_id for look in looks}
    endpoints = {h.id: endpoint_of(h, timeout_s=ENGINE_TIMEOUT_S)
                 for h in db.session.scalars(select(Host).where(Host.id.in_(hosts)))} \
        if hosts else {}
    db.session.commit()  # nothing held while the engines answer
    summary = {"instances": len(looks), "lines": 0, "errors": 0, "failures": 0}
    if not looks:
        return summary
    seen = _read(looks, endpoints, matchers, until, connect)
    by_id = {look.row_id: look for look in looks}
    for item in seen:
        if item.error is not None:
            summary["failures"] += 1
            continue
        look = by_id[item.row_id]
        values = {} if item.memory is None else {"memory_bytes": item.memory}
        if item.lines is not None:
            fresh = look.fresh
            values.update(
                log_lines=item.lines if fresh else ContainerInstance.log_lines + item.lines,
                error_lines=item.errors if fresh else ContainerInstance.error_lines + item.errors,
                logs_read_at=until, logs_container_id=look.container_id)
        if not values:
            continue
        # Only onto the row as it was read: the same container, not looked at since.
        written = db.session.execute(
            update(ContainerInstance)
            .where(ContainerInstance.id == look.row_id,
                   ContainerInstance.container_id == look.container_id,
                   _is(ContainerInstance.logs_read_at, look.read_at),
                   _is(ContainerInstance.logs_container_id, look.counted))
            .values(**values)
            .execution_options(synchronize_session=False)).rowcount
        if written and item.lines is not None:
            summary["lines"] += item.lines
            summary["errors"] += item.errors
    return summary


def _read(looks: list[Look], endpoints: dict[int, Endpoint], matchers: dict[int, re.Pattern],
          until: datetime, connect: Connect) -> list[Seen]:
    """Every look, in parallel lanes per host; the rest of a host's looks are skipped once
    one of them found its engine failing (each would wait out the same timeout)."""
    until_s = _unix(until)
    failed: dict[int, str] = {}
    lock = threading.Lock()

    def one(look: Look) -> Seen:
        if look.host_id in failed:
            return Seen(look.row_id, error=f"skipped: {failed[look.host_id]}")
        try:
            engine = connect(endpoints[look.host_id])
            try:
                lines = engine.logs_since(look.container_id,
                                          None if look.since is None else _unix(look.since),
                                          until_s)
                memory = engine.memory_usage(look.container_id) if lines is not None else None
            finally:
                engine.close()
        except EngineError as error:
            message = str(error)[:300]
            with lock:
                if look.host_id not in failed:
                    failed[look.host_id] = message
                    log.warning("release signals: host %s skipped this round: %s",
                                look.host_id, message)
            return Seen(look.row_id, error=message)
        if lines is None:
            return Seen(look.row_id)
        total, errors = count(lines, matchers[look.service_id])
        return Seen(look.row_id, total, errors, memory)

    ordered = round_robin(looks, lambda look: look.host_id)
    with _Lanes(look.host_id for look in ordered) as lanes:
        futures = [lanes.submit(look.host_id, one, look) for look in ordered]
    return [future.result() for future in futures]
