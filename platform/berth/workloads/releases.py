"""Operator actions on releases: new revisions, starting a release (alone or with others),
pause, resume, promote, roll back, retry. Everything is checked before anything is stored,
so bad input is a 4xx that leaves nothing behind; the reconcile rounds then carry the
release out (scheduler.orchestration.rollout decides, berth.workloads.round acts)."""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from sqlalchemy import func, select

from berth import audit, db
from berth.celery_app import enqueue
from berth.clock import utcnow
from berth.config import Config
from berth.errors import Conflict, InvalidInput, NotFound
from berth.models import Host, Pool, Release, Service, ServiceRevision
from berth.workloads import definitions, quotas
from scheduler.orchestration import rollout
from scheduler.orchestration.rollout import ReleaseError

KEEP_REVISIONS = 10  # per service; the released one and those in a release are always kept
ACTIONS = ("pause", "resume", "promote", "rollback", "retry")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def active_release(service: Service) -> Release | None:
    return db.session.scalar(select(Release).where(
        Release.service_id == service.id, Release.status.in_(rollout.ACTIVE_STATUSES)))


def get_release(service: Service, release_id: int) -> Release:
    release = db.session.get(Release, release_id)
    if release is None or release.service_id != service.id:
        raise NotFound(f"{service.application.name}/{service.name} has no release {release_id}")
    return release


def get_revision(service: Service, number: int) -> ServiceRevision:
    found = next((r for r in service.revisions if r.number == number), None)
    if found is None:
        kept = ", ".join(str(r.number) for r in service.revisions)
        raise NotFound(f"{service.application.name}/{service.name} has no revision {number} "
                       f"(kept: {kept})")
    return found


def diff(a: ServiceRevision, b: ServiceRevision) -> dict[str, dict]:
    """What changes from revision a to b, field by field."""
    return {name: {"from": a.spec.get(name), "to": b.spec.get(name)}
            for name in definitions.REVISION_FIELDS if a.spec.get(name) != b.spec.get(name)}


# -- starting ---------------------------------------------------------------------------------


def start(service: Service, body: Mapping, *, actor: str, config: Config | None = None,
          group: str | None = None) -> Release:
    """A release of `service` to the revision `body` names (`revision`, an earlier one: a
    rollback) or makes (`changes` to image, command, environment, cpus, memory, healthcheck),
    with the plan in the rest of `body` (rollout.Settings, or Compose's `update_config`)."""
    where = f"{service.application.name}/{service.name}"
    if service.application.deleting_since is not None:
        raise Conflict(f"application {service.application.name} is being torn down")
    if not isinstance(body, Mapping):
        raise InvalidInput("a release is an object: {changes: {...}} or {revision: N}, and settings")
    running = active_release(service)
    if running is not None:
        raise Conflict(f"{where} already has release {running.id} under way ({running.status}); "
                       f"promote, roll back or wait for it first")
    body = dict(body)
    changes, number = body.pop("changes", None), body.pop("revision", None)
    settings = _settings(body, service.replicas)
    _check_stages(settings)
    if (changes is None) == (number is None):
        raise InvalidInput("give either changes (a new revision) or revision (an earlier one)")
    if number is not None:
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidInput("revision must be a revision number")
        target = get_revision(service, number)
        if target.number == service.revision:
            raise InvalidInput(f"revision {number} is the released one already")
    else:
        spec = _changed_spec(service, changes)
        if config is not None:
            _check_image(service, spec["image"], config)
        target = _new_revision(service, spec, actor)
    _check_quota(service, target)
    release = Release(service_id=service.id, group=group, from_revision=service.revision,
                      to_revision=target.number, strategy=settings.strategy,
                      settings={"replicas": service.replicas, "plan": settings.as_dict()},
                      progress={}, status=rollout.RUNNING, created_by=actor,
                      detail="waiting for the first reconcile round")
    db.session.add(release)
    db.session.flush()
    audit.record("release.start", f"{where}: release {release.id} from revision "
                 f"{service.revision} to {target.number} ({settings.strategy})",
                 subject_type="service", subject=where, actor=actor, release=release.id)
    _kick(service)
    return release


def start_group(application, bodies: Mapping, shared: Mapping, *, actor: str,
                config: Config | None = None) -> list[Release]:
    """Releases of several services at once, promoted together: each service's body gets
    the shared settings under its own. Nothing starts unless every one is valid."""
    if not isinstance(bodies, Mapping) or not bodies:
        raise InvalidInput("services must map service names to {changes: ...} or {revision: N}")
    group = str(uuid.uuid4())
    services = {s.name: s for s in application.services}
    unknown = sorted(set(bodies) - set(services))
    if unknown:
        raise NotFound(f"application {application.name} has no service {', '.join(unknown)}")
    return [start(services[name], {**shared, **(body or {})}, actor=actor, config=config,
                  group=group) for name, body in sorted(bodies.items())]


def _settings(body: dict, replicas: int) -> rollout.Settings:
    compose = body.pop("update_config", None)
    try:
        if compose is not None:
            body = {**from_update_config(compose), **body}
        settings = rollout.Settings.from_dict(body)
        settings.check(replicas)
    except ReleaseError as error:
        raise InvalidInput(str(error)) from error
    return settings


def from_update_config(compose: Mapping) -> dict:
    """Compose's deploy.update_config as release settings: parallelism is the batch, delay
    the pause between batches, order start-first surges (stop-first frees a slot first),
    failure_action rollback rolls back and pause halts."""
    if not isinstance(compose, Mapping):
        raise ReleaseError("update_config is an object (parallelism, delay, failure_action, order)")
    unknown = sorted(set(compose) - {"parallelism", "delay", "failure_action", "order", "monitor"})
    if unknown:
        raise ReleaseError(f"update_config: {', '.join(unknown)} not supported")
    batch = compose.get("parallelism", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ReleaseError("update_config.parallelism must be a whole number of at least 1")
    order = compose.get("order", "stop-first")
    if order not in ("start-first", "stop-first"):
        raise ReleaseError("update_config.order must be start-first or stop-first")
    action = compose.get("failure_action", "rollback")
    if action not in ("rollback", "pause"):
        raise ReleaseError("update_config.failure_action must be rollback or pause "
                           "(Berth does not go on past a failed batch)")
    out = {"batch": batch, "auto_rollback": action == "rollback",
           "max_surge": batch if order == "start-first" else 0,
           "max_unavailable": 0 if order == "start-first" else batch}
    if "delay" in compose:
        out["pause_s"] = _seconds(compose["delay"], "update_config.delay")
    if "monitor" in compose:
        out["deadline_s"] = _seconds(compose["monitor"], "update_config.monitor")
    return out


def _seconds(value, name: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ReleaseError(f"{name} must be a duration like 10s, 500ms or 2m")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def _check_stages(settings: rollout.Settings) -> None:
    pools = set(db.session.scalars(select(Pool.name)))
    idcs = set(db.session.scalars(select(Host.idc).distinct()))
    for index, stage in enumerate(settings.stages, 1):
        missing = sorted(set(stage.pools) - pools)
        if missing:
            raise InvalidInput(f"stage {index}: unknown pool {', '.join(missing)} "
                               f"(pools: {', '.join(sorted(pools)) or 'none'})")
        if stage.idc is not None and stage.idc not in idcs:
            raise InvalidInput(f"stage {index}: no host is in IDC {stage.idc} "
                               f"(IDCs: {', '.join(sorted(idcs)) or 'none'})")


def _changed_spec(service: Service, changes) -> dict:
    if not isinstance(changes, Mapping) or not changes:
        raise InvalidInput(f"changes must set some of {', '.join(definitions.REVISION_FIELDS)}")
    unknown = sorted(set(changes) - set(definitions.REVISION_FIELDS))
    if unknown:
        raise InvalidInput(f"changes: {', '.join(unknown)} cannot be released; a revision "
                           f"changes {', '.join(definitions.REVISION_FIELDS)}")
    spec = {**definitions.revision_of(service), **changes}
    # The same checks as a new service's; a field left out of a definition is its default.
    definitions.parse_service({"name": service.name, **{k: v for k, v in spec.items() if v is not None}})
    if spec == definitions.revision_of(service):
        raise InvalidInput("the changes leave the service as it is: nothing to release")
    return spec


def _check_quota(service: Service, target: ServiceRevision) -> None:
    """Other limits on every replica: within the project's quota once the release is done."""
    cpus, memory = target.spec.get("cpus", service.cpus), target.spec.get("memory", service.memory)
    quotas.check(service.application.project,
                 quotas.of_service(service.replicas, cpus - service.cpus, memory - service.memory),
                 f"releasing {service.application.name}/{service.name} with {cpus:g} CPU and "
                 f"{memory // 2**20} MiB per replica")


def _check_image(service: Service, image: str, config: Config) -> None:
    from berth.workloads.services import check_image_exists

    check_image_exists(service.name, image, config, service.application)


def _new_revision(service: Service, spec: dict, actor: str) -> ServiceRevision:
    number = (db.session.scalar(select(func.max(ServiceRevision.number)).where(
        ServiceRevision.service_id == service.id)) or 0) + 1
    revision = ServiceRevision(number=number, spec=spec, created_by=actor)
    service.revisions.append(revision)
    _prune(service, keep={service.revision, number})
    return revision


def _prune(service: Service, keep: set[int]) -> None:
    """The oldest revisions beyond KEEP_REVISIONS go, unless released or in a release."""
    in_use = set(keep)
    for release in db.session.scalars(select(Release).where(
            Release.service_id == service.id, Release.status.in_(rollout.ACTIVE_STATUSES))):
        in_use.update((release.from_revision, release.to_revision))
    ordered = sorted(service.revisions, key=lambda r: r.number)
    extra = len(ordered) - KEEP_REVISIONS
    for revision in ordered:
        if extra <= 0:
            break
        if revision.number not in in_use:
            service.revisions.remove(revision)
            extra -= 1


# -- acting on a release ----------------------------------------------------------------------


def act(service: Service, release: Release, action: str, *, actor: str) -> Release:
    """pause, resume, promote, rollback (also a blue-green switch-back, or an abort) or
    retry (a new release of the same plan, after one that ended without succeeding)."""
    where = f"{service.application.name}/{service.name}"
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if action == "retry":
        return _retry(service, release, actor=actor)
    if release.status not in rollout.ACTIVE_STATUSES:
        raise Conflict(f"release {release.id} is over ({release.status}); retry it instead")
    now = utcnow().timestamp()
    plan = rollout.Release(release.from_revision, release.to_revision,
                           int(release.settings["replicas"]),
                           rollout.Settings.from_dict(release.settings["plan"]))
    progress = rollout.Progress.from_dict(release.progress) if release.progress else None
    try:
        if progress is None:  # no round has started it yet
            if action != "rollback":
                raise ReleaseError("the release has not started yet; try again in a moment")
            release.status, release.finished_at = rollout.ROLLED_BACK, utcnow()
            release.detail = "rolled back before it started"
        else:
            progress = {"pause": lambda: rollout.pause(progress),
                        "resume": lambda: rollout.resume(progress, now),
                        "promote": lambda: rollout.promote(plan, progress, now),
                        "rollback": lambda: rollout.rollback(progress, now, f"rolled back by {actor}"),
                        }[action]()
            release.progress = progress.as_dict()
            release.status = rollout.PAUSED if progress.paused else rollout.RUNNING
            release.detail = f"{action} asked by {actor}; the next round acts on it"
    except ReleaseError as error:
        raise Conflict(str(error)) from error
    audit.record(f"release.{action}", f"{where}: {action} of release {release.id} by {actor}",
                 subject_type="service", subject=where, actor=actor, release=release.id)
    _kick(service)
    return release


def act_group(application, group: str, action: str, *, actor: str) -> list[Release]:
    releases = list(db.session.scalars(select(Release).join(Service).where(
        Release.group == group, Service.application_id == application.id)))
    if not releases:
        raise NotFound(f"application {application.name} has no release group {group}")
    return [act(r.service, r, action, actor=actor) for r in releases
            if action == "retry" or r.status in rollout.ACTIVE_STATUSES]


def _retry(service: Service, release: Release, *, actor: str) -> Release:
    if release.status in rollout.ACTIVE_STATUSES:
        raise Conflict(f"release {release.id} is still under way")
    if release.status == rollout.SUCCEEDED:
        raise Conflict(f"release {release.id} succeeded; release another revision instead")
    if service.revision != release.from_revision:
        raise Conflict(f"the service is on revision {service.revision} now, not "
                       f"{release.from_revision}: start a new release instead")
    return start(service, {"revision": release.to_revision, **release.settings["plan"]},
                 actor=actor)


def _kick(service: Service) -> None:
    """Rounds at once (the deploy task re-checks every second while the release runs)."""
    from berth.workloads.tasks import deploy_application

    service.application.deploy_started_at = utcnow()
    enqueue(deploy_application, service.application_id)
