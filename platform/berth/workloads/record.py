"""Writing what a round did and saw, in one short transaction: instance rows (bulk, by id),
services' status and endpoints, events; and the applications whose teardown finished."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, insert, update

from berth import audit, db
from berth.clock import utcnow
from berth.models import Application, ContainerInstance, Release, Service
from berth.workloads.act import Outcome
from berth.workloads.desired import Desired, moment
from berth.workloads.observe import HostView
from scheduler.orchestration.plan import status_of
from scheduler.orchestration.rollout import Step
from scheduler.orchestration.state import AppPlan, Discard, Launch, RowWrite


@dataclass
class PassResult:
    converged: bool = True
    created: int = 0
    removed: int = 0
    waiting: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # gave up waiting for dependencies
    problems: dict[str, str] = field(default_factory=dict)
    deleted: bool = False  # the application was torn down and is gone

    @property
    def settled(self) -> bool:
        """Nothing more will happen without a change: converged, or only failed services left."""
        return self.converged or (bool(self.failed) and not self.waiting and not self.problems
                                  and not self.created and not self.removed)


def record(desired: Desired, plans: list[AppPlan], outcomes: dict[int, list[Outcome]],
           hosts: dict[int, HostView]) -> dict[int, PassResult]:
    apps = {app.id: app for app in desired.apps}
    results = {}
    for plan in plans:
        done = outcomes.get(plan.app_id, [])
        results[plan.app_id] = _record_app(desired, apps[plan.app_id], plan, done, hosts)
    db.session.commit()
    return results


def _record_app(desired: Desired, app, plan: AppPlan, done: list[Outcome],
                hosts: dict[int, HostView]) -> PassResult:
    result = PassResult(converged=plan.converged and all(o.ok for o in done),
                        waiting=dict(plan.waiting), failed=dict(plan.failed),
                        problems=dict(plan.problems))
    if plan.delete_when_done and all(o.ok for o in done):
        # The foreign keys cascade: services, dependencies, instance rows and policies go too.
        db.session.execute(delete(Application).where(Application.id == plan.app_id))
        audit.record("application.delete", f"tore down application {plan.app_name}",
                     subject_type="application", subject=plan.app_name)
        result.deleted = True
        return result
    rows = {row.key: row for row in plan.rows}
    result.removed += sum(1 for row in plan.rows if row.state == "removed")
    errors: dict[str, str] = {}
    events = list(plan.events)  # (kind, message, service)
    pulled: dict = {}  # row key -> the registry its image came from
    for outcome in done:
        action = outcome.action
        if outcome.error:
            errors.setdefault(action.service, outcome.error)
        if not outcome.ok:
            continue
        if isinstance(action, Launch):
            rows[action.row.key] = action.row._replace(container_id=outcome.container_id)
            if outcome.pulled_from:
                pulled[action.row.key] = outcome.pulled_from
            result.created += 1
            source = f" (image from {outcome.pulled_from})" if outcome.pulled_from else ""
            events.append(("instance.create", f"started {action.spec.name} on "
                           f"{hosts[action.host_id].name}{source}", action.service))
        elif isinstance(action, Discard):
            result.removed += 1
            if action.row is not None:
                rows[action.row.key] = action.row
        elif action.row is not None:
            rows[action.row.key] = action.row
    _write_rows(desired, plan.app_id, list(rows.values()), pulled)
    current = {s.name: s for s in app.services}
    final = {row.key: row for row in app.instances} | rows
    before, after = [], []  # status changes seen before this round acted, and made by it
    for name, write in plan.services.items():
        status, detail = write.status, write.detail
        if write.derived:  # counted again over the rows as the actions left them
            status = status_of(current[name], [(r.slot, r.revision, r.state == "running", r.health)
                                               for r in final.values() if r.service == name],
                               plan.layouts.get(name))
        if name in errors and not app.deleting:
            status, detail = "failing", errors[name]
            result.problems[name] = errors[name]
        if _write_service(desired, plan, current[name], status, detail, write):
            change = (f"service.{status}", f"{plan.app_name}/{name} is {status}"
                      + (f": {detail}" if detail else ""), name)
            (before if status == write.status else after).append(change)
    for name, (release_id, step) in plan.releases.items():
        events += _write_release(desired, plan, current[name], release_id, step)
    # In the order things happened: a dependency seen healthy comes before what it let start.
    for kind, message, service in before + events + after:
        audit.record(kind, message, subject_type="service", subject=f"{plan.app_name}/{service}")
    if errors:
        result.converged = False
    return result


def _write_release(desired: Desired, plan: AppPlan, service, release_id: int, step: Step
                   ) -> list[tuple[str, str, str]]:
    """The release's progress; once it is over, the service's released revision (its spec
    columns with it), so the next rounds run that revision alone."""
    over = step.finished is not None
    db.session.execute(update(Release).where(Release.id == release_id).values(
        progress=step.progress.as_dict(), status=step.status, detail=step.detail[:1000],
        analysis=step.analysis, finished_at=utcnow() if over else None))
    if step.finished is not None and step.finished != service.revision:
        spec = service.revisions[step.finished]
        db.session.execute(update(Service).where(
            Service.id == desired.service_ids[(plan.app_id, service.name)]).values(
            revision=step.finished, image=spec.image,
            command=list(spec.command) if spec.command else None,
            environment=dict(spec.environment), cpus=spec.cpus, memory=spec.memory,
            healthcheck=spec.healthcheck))
    name = f"{plan.app_name}/{service.name}"
    return [(kind, f"{name}: {message}", service.name) for kind, message in step.events]


def _write_rows(desired: Desired, app_id: int, rows: list[RowWrite], pulled: dict) -> None:
    updates, inserts = [], []
    services = desired.service_ids
    for row in rows:
        values = dict(slot=row.slot, revision=row.revision, name=row.name, host_id=row.host_id,
                      container_id=row.container_id, host_port=row.host_port, state=row.state,
                      health=row.health, restarts=row.restarts,
                      backoff_until=moment(row.backoff_until))
        if row.fresh:
            values["cpu_percent"] = None
        if row.key in pulled:
            values["pulled_from"] = pulled[row.key]
        row_id = desired.row_ids.get((app_id, row.service, row.slot, row.revision))
        if row_id is None:
            inserts.append({**values, "service_id": services[(app_id, row.service)]})
        else:
            updates.append({**values, "id": row_id})
    # Grouped by the columns they set: a bulk statement takes one shape of row.
    for batch in _by_shape(updates):
        db.session.execute(update(ContainerInstance), batch)
    for batch in _by_shape(inserts):
        db.session.execute(insert(ContainerInstance), batch)


def _by_shape(rows: list[dict]) -> list[list[dict]]:
    shapes: dict[tuple, list[dict]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(row)), []).append(row)
    return list(shapes.values())


def _write_service(desired: Desired, plan: AppPlan, service, status: str, detail: str | None,
                   write) -> bool:
    """Store what changed; whether the status did."""
    detail = detail[:1000] if detail else None
    if (status, detail, write.waiting_since, write.endpoints) == (
            service.status, service.status_detail, service.waiting_since, service.endpoints):
        return False
    service_id = desired.service_ids[(plan.app_id, service.name)]
    values = dict(status=status, status_detail=detail, waiting_since=moment(write.waiting_since))
    if write.endpoints != service.endpoints:
        # A new version wakes discovery's blocking queries.
        values.update(endpoints=list(write.endpoints),
                      endpoints_version=desired.endpoints_version[service_id] + 1)
    db.session.execute(update(Service).where(Service.id == service_id).values(**values))
    return status != service.status
