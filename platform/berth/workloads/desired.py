"""Reading what the database wants and recorded into the planner's plain data, in six
queries whatever the number of applications (a round at fleet size reads them all)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import select

from berth import db
from berth.models import (
    Application, ContainerInstance, Release, Service, ServiceDependency, ServiceRevision,
)
from scheduler.orchestration import rollout
from scheduler.orchestration.state import (
    ActiveRelease, AppState, InstanceState, RevisionSpec, ServiceState,
)


def seconds(moment: datetime | None) -> float | None:
    """Naive UTC datetimes (as stored) to Unix seconds, for the clock-free planner."""
    return None if moment is None else moment.replace(tzinfo=timezone.utc).timestamp()


def moment(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, timezone.utc).replace(tzinfo=None)


class Desired:
    """The applications of a round as plain data, and the database ids behind them."""

    def __init__(self, apps: list[AppState], service_ids: dict[tuple[int, str], int],
                 row_ids: dict[tuple[int, str, int, int], int], endpoints_version: dict[int, int]):
        self.apps = apps
        self.service_ids = service_ids  # (app id, service) -> services.id
        self.row_ids = row_ids  # (app id, service, slot, revision) -> container_instances.id
        self.endpoints_version = endpoints_version  # services.id -> version


def read_desired(app_ids: Iterable[int], *, everything: bool = False) -> Desired:
    """The applications `app_ids`; with `everything` (they are all of them, as in a full
    round) the queries read whole tables, since a filter of a thousand ids costs more."""
    ids = set(app_ids)

    def only(statement, column, values):
        return statement if everything else statement.where(column.in_(list(values)))

    apps = {row.id: row for row in db.session.execute(only(
        select(Application.id, Application.name, Application.deleting_since,
               Application.deploy_started_at), Application.id, ids)) if row.id in ids}
    services = [s for s in db.session.execute(only(select(Service), Service.application_id, ids)
                                              .order_by(Service.name)).scalars()
                if s.application_id in ids]
    names = {s.id: (s.application_id, s.name) for s in services}
    depends: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for service_id, on_id, condition in db.session.execute(only(
            select(ServiceDependency.service_id, ServiceDependency.depends_on_id,
                   ServiceDependency.condition), ServiceDependency.service_id, names)):
        if service_id in names:
            depends[service_id].append((names[on_id][1], condition))
    instances: dict[int, list[InstanceState]] = defaultdict(list)
    row_ids = {}
    for row in db.session.execute(only(
            select(ContainerInstance.id, ContainerInstance.service_id, ContainerInstance.slot,
                   ContainerInstance.revision, ContainerInstance.name, ContainerInstance.host_id,
                   ContainerInstance.container_id, ContainerInstance.host_port,
                   ContainerInstance.state, ContainerInstance.health, ContainerInstance.restarts,
                   ContainerInstance.backoff_until, ContainerInstance.log_lines,
                   ContainerInstance.error_lines, ContainerInstance.cpu_percent,
                   ContainerInstance.memory_bytes), ContainerInstance.service_id, names)):
        if row.service_id not in names:
            continue
        app_id, service = names[row.service_id]
        instances[app_id].append(InstanceState(
            service, row.slot, row.revision, row.name, row.host_id, row.container_id,
            row.host_port, row.state, row.health, row.restarts or 0, seconds(row.backoff_until),
            row.log_lines or 0, row.error_lines or 0, row.cpu_percent, row.memory_bytes))
        row_ids[(app_id, service, row.slot, row.revision)] = row.id
    releases, revisions = _releases(names)
    by_app: dict[int, list[ServiceState]] = defaultdict(list)
    for s in services:
        by_app[s.application_id].append(ServiceState(
            name=s.name, image=s.image, revision=s.revision, replicas=s.replicas, cpus=s.cpus,
            memory=s.memory, command=tuple(s.command) if s.command else None,
            environment=dict(s.environment or {}), healthcheck=s.healthcheck,
            wants_port=bool(s.ports), constraints=tuple(s.constraints or ()),
            capabilities=tuple(s.capabilities or ()), pids_limit=s.pids_limit,
            read_only=s.read_only,
            strategy=s.strategy, depends_on=tuple(sorted(depends[s.id])), status=s.status,
            status_detail=s.status_detail, waiting_since=seconds(s.waiting_since),
            endpoints=tuple(s.endpoints or ()), cluster=s.cluster, pool=s.pool, idc=s.idc,
            min_cpus=s.min_cpus, min_memory=s.min_memory,
            revisions=revisions.get(s.id, {}), release=releases.get(s.id)))
    states = [AppState(app.id, app.name, tuple(by_app[app.id]), tuple(instances[app.id]),
                       deleting=app.deleting_since is not None,
                       deploy_started_at=seconds(app.deploy_started_at))
              for app in apps.values()]
    return Desired(states, {names[s.id]: s.id for s in services}, row_ids,
                   {s.id: s.endpoints_version for s in services})


def _releases(names: dict[int, tuple[int, str]]
              ) -> tuple[dict[int, ActiveRelease], dict[int, dict[int, RevisionSpec]]]:
    """The releases under way (one per service at most) and the revisions they run."""
    active: dict[int, ActiveRelease] = {}
    numbers: dict[int, set[int]] = defaultdict(set)
    for row in db.session.scalars(select(Release).where(
            Release.status.in_(rollout.ACTIVE_STATUSES))):
        if row.service_id not in names:
            continue
        release = rollout.Release(row.from_revision, row.to_revision, int(row.settings["replicas"]),
                                  rollout.Settings.from_dict(row.settings["plan"]))
        progress = rollout.Progress.from_dict(row.progress) if row.progress else None
        active[row.service_id] = ActiveRelease(row.id, release, progress)
        numbers[row.service_id].update((row.from_revision, row.to_revision))
    revisions: dict[int, dict[int, RevisionSpec]] = defaultdict(dict)
    if numbers:
        for row in db.session.scalars(select(ServiceRevision).where(
                ServiceRevision.service_id.in_(list(numbers)))):
            if row.number in numbers[row.service_id]:
                revisions[row.service_id][row.number] = revision_spec(row.spec)
    return active, revisions


def revision_spec(spec: dict) -> RevisionSpec:
    return RevisionSpec(spec["image"], tuple(spec["command"]) if spec.get("command") else None,
                        dict(spec.get("environment") or {}), float(spec.get("cpus", 0.1)),
                        int(spec.get("memory", 64 * 2**20)), spec.get("healthcheck"))
