"""Berth's view of the fleet as Prometheus metrics (the berth_* series on /metrics).

A custom collector: each scrape reads the database with a few aggregate queries (no query
per row), so a scrape stays cheap with 10,000 instances. The README's Monitoring section
lists the names and labels; alert rules (rules.py) and pages (series.py) rely on them.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from berth.models import (Application, AutoscalingPolicy, Cluster, ContainerInstance, Event,
                          Host, Pool, Project, Registry, Release, Service, SyncJob)

HOST_LABELS = ["host", "pool", "cluster", "idc"]
SERVICE_STATUSES = ("pending", "waiting", "started", "healthy", "failed", "failing",
                    "unschedulable", "stopping", "stopped")
RELEASE_OUTCOMES = ("succeeded", "rolled_back", "failed")
QUOTA_RESOURCES = ("cpus", "memory", "replicas")


def _ready(health: str | None) -> bool:
    return health in ("healthy", None)


class BerthCollector(Collector):
    """Yields the berth_* metric families, read from the database at scrape time."""

    def __init__(self, session: Callable[[], Session]):
        self._session = session

    def describe(self) -> list:
        return []  # no read of the database when it is registered

    def collect(self) -> Iterator:
        session = self._session()
        try:
            yield from self._hosts(session)
            yield from self._services(session)
            yield from self._autoscaling(session)
            yield from self._quotas(session)
            yield from self._releases(session)
            yield from self._mirrors(session)
        finally:
            # A scrape reads; leave no transaction open on the web process' session.
            session.rollback()

    def _hosts(self, session: Session):
        up = GaugeMetricFamily("berth_host_up", "1 when the host answers Berth's heartbeat",
                               labels=HOST_LABELS)
        cpus = GaugeMetricFamily("berth_host_cpus", "CPUs of the host", labels=HOST_LABELS)
        memory = GaugeMetricFamily("berth_host_memory_bytes", "Memory of the host",
                                   labels=HOST_LABELS)
        cpu_used = GaugeMetricFamily("berth_host_cpu_used_cores",
                                     "Cores its containers use (their last CPU samples)",
                                     labels=HOST_LABELS)
        memory_used = GaugeMetricFamily("berth_host_memory_used_bytes",
                                        "Memory its containers use (last samples)",
                                        labels=HOST_LABELS)
        used = {row.host_id: row for row in session.execute(
            select(ContainerInstance.host_id,
                   func.coalesce(func.sum(ContainerInstance.cpu_percent), 0.0).label("cpu"),
                   func.coalesce(func.sum(ContainerInstance.memory_bytes), 0).label("memory"))
            .where(ContainerInstance.host_id.is_not(None),
                   ContainerInstance.state == "running")
            .group_by(ContainerInstance.host_id))}
        for row in session.execute(
                select(Host.id, Host.name, Host.idc, Host.cpus, Host.memory, Host.liveness,
                       Pool.name.label("pool"), Cluster.name.label("cluster"))
                .join(Pool, Host.pool_id == Pool.id).join(Cluster, Pool.cluster_id == Cluster.id)):
            labels = [row.name, row.pool, row.cluster, row.idc or ""]
            up.add_metric(labels, 1.0 if row.liveness == "up" else 0.0)
            if row.cpus is not None:
                cpus.add_metric(labels, float(row.cpus))
            if row.memory is not None:
                memory.add_metric(labels, float(row.memory))
            sample = used.get(row.id)
            cpu_used.add_metric(labels, float(sample.cpu) / 100.0 if sample else 0.0)
            memory_used.add_metric(labels, float(sample.memory) if sample else 0.0)
        yield from (up, cpus, memory, cpu_used, memory_used)

    def _services(self, session: Session):
        replicas = GaugeMetricFamily("berth_service_replicas", "Replicas: desired, running, healthy",
                                     labels=["application", "service", "project", "state"])
        status = GaugeMetricFamily("berth_service_status", "1 for the service's current status",
                                   labels=["application", "service", "status"])
        errors = CounterMetricFamily("berth_service_error_lines",
                                     "Log lines of its containers matching its error pattern",
                                     labels=["application", "service"])
        cpu = GaugeMetricFamily("berth_container_cpu_percent", "CPU of a container (100 = a core)",
                                labels=["application", "service", "revision", "instance", "host"])
        memory = GaugeMetricFamily("berth_container_memory_bytes", "Memory a container uses",
                                   labels=["application", "service", "revision", "instance", "host"])
        counts = {row.service_id: row for row in session.execute(
            select(ContainerInstance.service_id,
                   func.sum(case((ContainerInstance.state == "running", 1), else_=0)).label("running"),
                   func.sum(case(((ContainerInstance.state == "running")
                                  & ((ContainerInstance.health == "healthy")
                                     | ContainerInstance.health.is_(None)), 1),
                                 else_=0)).label("healthy"),
                   func.coalesce(func.sum(ContainerInstance.error_lines), 0).label("errors"))
            .group_by(ContainerInstance.service_id))}
        names = {}
        for row in session.execute(
                select(Service.id, Service.name, Service.replicas, Service.status,
                       Application.name.label("application"), Project.name.label("project"))
                .join(Application, Service.application_id == Application.id)
                .join(Project, Application.project_id == Project.id)):
            names[row.id] = (row.application, row.name)
            seen = counts.get(row.id)
            for state, value in (("desired", row.replicas),
                                 ("running", seen.running if seen else 0),
                                 ("healthy", seen.healthy if seen else 0)):
                replicas.add_metric([row.application, row.name, row.project, state],
                                    float(value or 0))
            status.add_metric([row.application, row.name, row.status], 1.0)
            errors.add_metric([row.application, row.name], float(seen.errors if seen else 0))
        for row in session.execute(
                select(ContainerInstance.service_id, ContainerInstance.name,
                       ContainerInstance.revision, ContainerInstance.cpu_percent,
                       ContainerInstance.memory_bytes, Host.name.label("host"))
                .join(Host, ContainerInstance.host_id == Host.id, isouter=True)
                .where(ContainerInstance.state == "running")):
            if row.service_id not in names:
                continue
            labels = [*names[row.service_id], str(row.revision), row.name, row.host or ""]
            if row.cpu_percent is not None:
                cpu.add_metric(labels, float(row.cpu_percent))
            if row.memory_bytes is not None:
                memory.add_metric(labels, float(row.memory_bytes))
        yield from (replicas, status, errors, cpu, memory)

    def _autoscaling(self, session: Session):
        at_max = GaugeMetricFamily("berth_autoscaler_at_max",
                                   "1 while an autoscaled service runs its max replicas",
                                   labels=["application", "service"])
        for row in session.execute(
                select(Application.name.label("application"), Service.name, Service.replicas,
                       AutoscalingPolicy.max_replicas)
                .join(Service, AutoscalingPolicy.service_id == Service.id)
                .join(Application, Service.application_id == Application.id)
                .where(AutoscalingPolicy.enabled.is_(True))):
            at_max.add_metric([row.application, row.name],
                              1.0 if row.replicas >= row.max_replicas else 0.0)
        yield at_max
        decisions = CounterMetricFamily("berth_autoscaler_decisions",
                                        "Scale changes the autoscaler made",
                                        labels=["application", "service", "direction"])
        totals: dict[tuple[str, str, str], int] = defaultdict(int)
        for subject, data in session.execute(
                select(Event.subject, Event.data)
                .where(Event.kind == "service.scale", Event.actor == "autoscaler")):
            application, _, service = (subject or "").partition("/")
            data = data or {}
            up = (data.get("replicas") or 0) > (data.get("previous") or 0)
            totals[(application, service, "up" if up else "down")] += 1
        for labels, value in sorted(totals.items()):
            decisions.add_metric(list(labels), float(value))
        yield decisions

    def _quotas(self, session: Session):
        reached = GaugeMetricFamily("berth_project_quota_reached",
                                    "1 when the project's use is at its quota",
                                    labels=["project", "resource"])
        used = {row.project_id: row for row in session.execute(
            select(Application.project_id,
                   func.coalesce(func.sum(Service.replicas * Service.cpus), 0.0).label("cpus"),
                   func.coalesce(func.sum(Service.replicas * Service.memory), 0).label("memory"),
                   func.coalesce(func.sum(Service.replicas), 0).label("replicas"))
            .join(Service, Service.application_id == Application.id)
            .group_by(Application.project_id))}
        for project in session.execute(select(Project.id, Project.name, Project.quota_cpus,
                                              Project.quota_memory, Project.quota_replicas)):
            use = used.get(project.id)
            for resource in QUOTA_RESOURCES:
                quota = getattr(project, f"quota_{resource}")
                if quota is None:
                    continue
                value = float(getattr(use, resource) or 0) if use else 0.0
                reached.add_metric([project.name, resource],
                                   1.0 if value >= float(quota) - 1e-9 else 0.0)
        yield reached

    def _releases(self, session: Session):
        releases = CounterMetricFamily("berth_releases", "Releases that ended, by outcome",
                                       labels=["application", "service", "outcome"])
        for row in session.execute(
                select(Application.name.label("application"), Service.name, Release.status,
                       func.count(Release.id).label("n"))
                .join(Service, Release.service_id == Service.id)
                .join(Application, Service.application_id == Application.id)
                .where(Release.status.in_(RELEASE_OUTCOMES))
                .group_by(Application.name, Service.name, Release.status)):
            releases.add_metric([row.application, row.name, row.status], float(row.n))
        yield releases

    def _mirrors(self, session: Session):
        lag = GaugeMetricFamily("berth_mirror_lag_tags",
                                "Tags a mirror's queued and running syncs have still to copy",
                                labels=["registry", "idc"])
        behind = {row.registry_id: row.left for row in session.execute(
            select(SyncJob.registry_id,
                   func.coalesce(func.sum(SyncJob.tags_total - SyncJob.tags_done), 0).label("left"))
            .where(SyncJob.status.in_(("queued", "running")))
            .group_by(SyncJob.registry_id))}
        for row in session.execute(select(Registry.id, Registry.name, Registry.idc)
                                   .where(Registry.role == "mirror")):
            lag.add_metric([row.name, row.idc or ""], float(max(0, behind.get(row.id) or 0)))
        yield lag
