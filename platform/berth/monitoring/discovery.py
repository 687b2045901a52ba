"""Prometheus HTTP service discovery: the healthy instances of services that declare
`metrics`, as the http_sd JSON list, labelled so PromQL can select on them.

`targets()` is pure (rows in, the list out); `rows()` reads them in one query. A target's
address is its host's address and the instance's host port, the same "address:port" the
service's discovery endpoints hand out (scheduler.orchestration.plan); a service has one
port, its $PORT (metrics.port 0), so the host port is the metrics port.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.models import Application, Cluster, ContainerInstance, Host, Pool, Service
from berth.monitoring.promql import MetricsSpec
from scheduler.orchestration.state import READY_HEALTH


@dataclass(frozen=True)
class TargetRow:
    application: str
    service: str
    revision: int
    instance: str
    host: str
    pool: str
    cluster: str
    idc: str
    address: str
    host_port: int
    metrics: dict


def targets(rows: Iterable[TargetRow]) -> list[dict]:
    """One http_sd group per instance, sorted for a stable answer."""
    out = []
    for row in sorted(rows, key=lambda r: (r.application, r.service, r.revision, r.instance)):
        spec = MetricsSpec.from_json(row.metrics)
        if spec is None or not row.host_port:
            continue
        out.append({"targets": [f"{row.address}:{row.host_port}"], "labels": {
            "application": row.application, "service": row.service,
            "revision": str(row.revision), "host": row.host, "pool": row.pool,
            "cluster": row.cluster, "idc": row.idc, "instance_name": row.instance,
            "__metrics_path__": spec.path}})
    return out


def rows(session: Session) -> list[TargetRow]:
    """The running, ready instances (healthy, or with no healthcheck) of services with metrics."""
    ready = [h for h in READY_HEALTH if h is not None]
    query = (select(Application.name.label("application"), Service.name.label("service"),
                    Service.metrics, ContainerInstance.revision, ContainerInstance.name.label("instance"),
                    ContainerInstance.host_port, Host.name.label("host"), Host.address, Host.idc,
                    Pool.name.label("pool"), Cluster.name.label("cluster"))
             .join(Service, ContainerInstance.service_id == Service.id)
             .join(Application, Service.application_id == Application.id)
             .join(Host, ContainerInstance.host_id == Host.id)
             .join(Pool, Host.pool_id == Pool.id).join(Cluster, Pool.cluster_id == Cluster.id)
             .where(Service.metrics.is_not(None), ContainerInstance.state == "running",
                    ContainerInstance.host_port.is_not(None),
                    ContainerInstance.health.in_(ready) | ContainerInstance.health.is_(None)))
    return [TargetRow(application=r.application, service=r.service, revision=r.revision,
                      instance=r.instance, host=r.host, pool=r.pool, cluster=r.cluster,
                      idc=r.idc or "", address=r.address, host_port=r.host_port,
                      metrics=r.metrics)
            for r in session.execute(query) if r.metrics]
