"""Read-side views of the inventory for pages and the API: rows per host, the cluster tree.

Plain dataclasses, never the Host rows themselves, so the TLS material cannot leak into a
template or a JSON answer by accident: only `uses_tls` leaves this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from berth import db
from berth.hosts.liveness import is_alive
from berth.models import Cluster, ContainerInstance, Host, Pool, Service

# Instances in these states no longer hold CPU or memory on their host.
NOT_PLACED = ("removed", "exited")


def stale_after(probe_interval_s: float) -> timedelta:
    """Three missed probe rounds: one late probe is not an outage, three are."""
    return timedelta(seconds=3 * probe_interval_s)


@dataclass(frozen=True)
class HostRow:
    id: int
    name: str
    cluster: str
    pool: str
    idc: str
    endpoint: str
    uses_tls: bool
    labels: dict[str, str]
    liveness: str
    alive: bool
    last_heartbeat_at: datetime | None
    heartbeat_age_s: float | None
    cpus: float | None
    memory: int | None
    placed_cpus: float
    placed_memory: int
    admin_state: str
    last_error: str | None
    kernel: str | None
    engine_version: str | None
    disk_type: str | None
    disk_gb: int | None
    port_range_start: int
    port_range_end: int

    @property
    def status(self) -> str:
        """What the badge says: the recorded liveness, except that an `up` host whose
        heartbeat has gone quiet is `stale` (the probes stopped, so `up` is not known)."""
        if self.liveness == "up" and not self.alive:
            return "stale"
        return self.liveness


STATUSES = ("up", "stale", "down", "unknown")


def placed(host_ids: list[int] | None = None) -> dict[int, tuple[float, int]]:
    """CPU and memory reserved by the live instances on each host, in one grouped query."""
    query = (select(ContainerInstance.host_id, func.coalesce(func.sum(Service.cpus), 0.0),
                    func.coalesce(func.sum(Service.memory), 0))
             .join(Service, Service.id == ContainerInstance.service_id)
             .where(ContainerInstance.host_id.is_not(None),
                    ContainerInstance.state.not_in(NOT_PLACED))
             .group_by(ContainerInstance.host_id))
    if host_ids is not None:
        query = query.where(ContainerInstance.host_id.in_(host_ids))
    return {host_id: (float(cpus), int(memory)) for host_id, cpus, memory in db.session.execute(query)}


def _filtered(query, *, cluster: str | None, pool: str | None, liveness: str | None,
              state: str | None, now: datetime, stale: timedelta):
    """The inventory filters in SQL. `state` is either axis, as the hosts page offers one
    filter for both: a status (up/stale/down/unknown, stale being up with a quiet heartbeat,
    as HostRow.status says) or an admin state; their values do not overlap."""
    if cluster:
        query = query.where(Cluster.name == cluster)
    if pool:
        query = query.where(Pool.name == pool)
    if liveness:
        query = query.where(Host.liveness == liveness)
    if state in STATUSES:
        heard = Host.last_heartbeat_at.is_not(None) & (Host.last_heartbeat_at >= now - stale)
        if state == "up":
            query = query.where(Host.liveness == "up", heard)
        elif state == "stale":
            query = query.where(Host.liveness == "up", ~heard)
        else:
            query = query.where(Host.liveness == state)
    elif state:
        query = query.where(Host.admin_state == state)
    return query


def _joined(query):
    return (query.join(Pool, Host.pool_id == Pool.id)
            .join(Cluster, Pool.cluster_id == Cluster.id))


def host_rows(now: datetime, stale: timedelta, *, cluster: str | None = None,
              pool: str | None = None, liveness: str | None = None, state: str | None = None,
              host_ids: list[int] | None = None, limit: int | None = None,
              offset: int = 0) -> list[HostRow]:
    """Every host (optionally filtered, optionally one page of them), ordered by cluster,
    pool and name."""
    query = _filtered(_joined(select(Host, Pool.name, Cluster.name)), cluster=cluster,
                      pool=pool, liveness=liveness, state=state, now=now, stale=stale)
    query = query.order_by(Cluster.name, Pool.name, Host.name)
    if host_ids is not None:
        query = query.where(Host.id.in_(host_ids))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    found = db.session.execute(query).all()
    # All hosts' sums at once (one grouped query), only the listed ones' for a page.
    listed = host_ids if host_ids is not None or limit is None else [h.id for h, _, _ in found]
    usage = placed(listed) if found else {}
    return [_row(host, pool_name, cluster_name, usage.get(host.id, (0.0, 0)), now, stale)
            for host, pool_name, cluster_name in found]


def count_hosts(now: datetime, stale: timedelta, *, cluster: str | None = None,
                pool: str | None = None, state: str | None = None) -> int:
    """How many hosts `host_rows` would list with these filters and no page."""
    counted = _joined(select(func.count(Host.id)).select_from(Host))
    query = _filtered(counted, cluster=cluster, pool=pool, liveness=None, state=state,
                      now=now, stale=stale)
    return db.session.scalar(query) or 0


def host_row(host_id: int, now: datetime, stale: timedelta) -> HostRow | None:
    rows = host_rows(now, stale, host_ids=[host_id])
    return rows[0] if rows else None


def _row(host: Host, pool: str, cluster: str, usage: tuple[float, int], now: datetime,
         stale: timedelta) -> HostRow:
    heartbeat = host.last_heartbeat_at
    return HostRow(
        id=host.id, name=host.name, cluster=cluster, pool=pool, idc=host.idc,
        endpoint=host.endpoint, uses_tls=bool(host.tls_cert), labels=dict(host.labels or {}),
        liveness=host.liveness, alive=is_alive(host.liveness, heartbeat, now, stale),
        last_heartbeat_at=heartbeat,
        heartbeat_age_s=None if heartbeat is None else max(0.0, (now - heartbeat).total_seconds()),
        cpus=host.cpus, memory=host.memory, placed_cpus=usage[0], placed_memory=usage[1],
        admin_state=host.admin_state, last_error=host.last_error, kernel=host.kernel,
        engine_version=host.engine_version, disk_type=host.disk_type, disk_gb=host.disk_gb,
        port_range_start=host.port_range_start, port_range_end=host.port_range_end,
    )


@dataclass
class PoolNode:
    id: int
    name: str
    up: int = 0
    down: int = 0
    total: int = 0


@dataclass
class ClusterNode:
    id: int
    name: str
    description: str
    pools: list[PoolNode] = field(default_factory=list)

    @property
    def up(self) -> int:
        return sum(p.up for p in self.pools)

    @property
    def down(self) -> int:
        return sum(p.down for p in self.pools)

    @property
    def total(self) -> int:
        return sum(p.total for p in self.pools)


def cluster_tree(now: datetime, stale: timedelta) -> list[ClusterNode]:
    """Clusters -> pools -> host counts. `up` counts only hosts heard from recently, so
    up + down may be less than total (unknown and stale hosts are neither)."""
    clusters = db.session.scalars(
        select(Cluster).options(selectinload(Cluster.pools)).order_by(Cluster.name)).all()
    pools: dict[int, PoolNode] = {}
    tree = []
    for cluster in clusters:
        node = ClusterNode(cluster.id, cluster.name, cluster.description)
        for pool in sorted(cluster.pools, key=lambda p: p.name):
            pools[pool.id] = PoolNode(pool.id, pool.name)
            node.pools.append(pools[pool.id])
        tree.append(node)
    for pool_id, state, heartbeat in db.session.execute(
            select(Host.pool_id, Host.liveness, Host.last_heartbeat_at)):
        counts = pools[pool_id]
        counts.total += 1
        counts.up += is_alive(state, heartbeat, now, stale)
        counts.down += state == "down"
    return tree


def cluster_names() -> list[str]:
    return list(db.session.scalars(select(Cluster.name).order_by(Cluster.name)))


def pool_names() -> list[str]:
    return list(db.session.scalars(select(Pool.name).distinct().order_by(Pool.name)))
