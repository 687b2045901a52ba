"""The I/O side of placement: the inventory as plain snapshots for the pure engine.

scheduler.placement decides; this module only reads the database into HostSnapshots
(service counts keyed as scheduler.orchestration.capacity.request_for names services).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

from berth import db
from berth.hosts.liveness import is_alive
from berth.hosts.overview import NOT_PLACED, placed, stale_after
from berth.models import Application, Cluster, ContainerInstance, Host, Pool, Service
from scheduler.orchestration.containers import service_key
from scheduler.orchestration.rollout import IDC_LABEL, POOL_LABEL
from scheduler.placement import Decision, HostSnapshot, Placer, PlacementRequest


def host_snapshots(now: datetime, probe_interval_s: float) -> list[HostSnapshot]:
    """Every host with known hardware, as the engine sees it. Three queries in all."""
    stale = stale_after(probe_interval_s)
    usage = placed()
    ports: dict[int, set[int]] = defaultdict(set)
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    live = (select(ContainerInstance.host_id, ContainerInstance.host_port, Application.name,
                   Service.name)
            .join(Service, Service.id == ContainerInstance.service_id)
            .join(Application, Application.id == Service.application_id)
            .where(ContainerInstance.host_id.is_not(None),
                   ContainerInstance.state.not_in(NOT_PLACED)))
    for host_id, port, application, service in db.session.execute(live):
        if port:
            ports[host_id].add(port)
        counts[host_id][service_key(application, service)] += 1
    rows = db.session.execute(select(Host, Pool.name, Cluster.name)
                              .join(Pool, Pool.id == Host.pool_id)
                              .join(Cluster, Cluster.id == Pool.cluster_id))
    snapshots = []
    for host, pool, cluster in rows:
        if not host.cpus or not host.memory:
            continue  # never answered a probe: nothing known to place against
        labels = dict(host.labels or {})
        if host.disk_type:
            labels.setdefault("disk", host.disk_type)
        # Where it is, as labels too: a release's stage and a service's IDC are constraints.
        labels.update({POOL_LABEL: pool, IDC_LABEL: host.idc})
        cpus, memory = usage.get(host.id, (0.0, 0))
        snapshots.append(HostSnapshot(
            id=host.id, name=host.name, cluster=cluster, pool=pool, idc=host.idc,
            cpus=host.cpus, memory=host.memory, labels=labels,
            alive=is_alive(host.liveness, host.last_heartbeat_at, now, stale),
            admin_state=host.admin_state, allocated_cpus=cpus, allocated_memory=memory,
            used_ports=frozenset(ports.get(host.id, ())),
            service_counts=dict(counts.get(host.id, {})),
        ))
    return snapshots


def place_replicas(request: PlacementRequest, count: int, *, now: datetime,
                   probe_interval_s: float) -> list[Decision]:
    """Decisions for `count` more containers of `request`, each seeing the ones before it."""
    return Placer(host_snapshots(now, probe_interval_s)).place_replicas(request, count)
