"""Applying a whole definition to an application that exists: what differs per service
(plan, pure), then the scales and releases that make it so (execute); with dry_run, the
plan and where each new container would go, acting on nothing."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from berth import audit
from berth.clock import utcnow
from berth.config import Config
from berth.errors import Conflict, InvalidInput
from berth.models import Application, Service
from berth.workloads import definitions, quotas, releases
from berth.workloads import services as workloads
from berth.workloads.compose import UPDATE_CONFIG
from berth.workloads.definitions import REVISION_FIELDS, ServiceSpec

# What a running service cannot change in place (the model keeps them fixed after creation).
FIXED_FIELDS = ("port", "constraints", "strategy", "capabilities", "pids_limit", "read_only",
                "cluster", "pool", "idc", "min_cpus", "min_memory", "error_pattern", "depends_on")
# What changes in place with no release: nothing in the containers depends on it.
SETTINGS_FIELDS = ("metrics",)
RECREATE = ("tear the application down (DELETE /api/v1/applications/{name}) and apply it "
            "again")


@dataclass
class ServiceChange:
    service: str
    replicas: tuple[int, int] | None = None  # (from, to)
    changes: dict[str, dict] = field(default_factory=dict)  # revision field -> {from, to}
    settings: dict[str, dict] = field(default_factory=dict)  # SETTINGS_FIELDS -> {from, to}
    note: str | None = None

    def as_dict(self) -> dict:
        return {"service": self.service,
                "replicas": None if self.replicas is None else
                {"from": self.replicas[0], "to": self.replicas[1]},
                "changes": {**self.changes, **self.settings}, "note": self.note}


def update_configs(raw: Mapping, names: list[str]) -> dict[str, dict]:
    """The definition's per-service update_config (see berth.workloads.compose.UPDATE_CONFIG)."""
    found = raw.get(UPDATE_CONFIG) or {}
    if not isinstance(found, Mapping) or not all(isinstance(v, Mapping) for v in found.values()):
        raise InvalidInput(f"{UPDATE_CONFIG} maps service names to Compose update_config objects")
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise InvalidInput(f"{UPDATE_CONFIG}: no service {', '.join(unknown)}")
    return {name: dict(value) for name, value in found.items()}


def wanted(spec: ServiceSpec) -> dict:
    """A parsed service in the terms the stored one is compared in."""
    return {
        "image": spec.image, "command": spec.command, "environment": dict(spec.environment),
        "cpus": float(spec.cpus), "memory": spec.memory, "healthcheck": spec.healthcheck,
        "port": bool(spec.port), "constraints": list(spec.constraints), "strategy": spec.strategy,
        "capabilities": definitions.capability_names(spec.capabilities),
        "pids_limit": spec.pids_limit, "read_only": spec.read_only, "cluster": spec.cluster,
        "pool": spec.pool, "idc": spec.idc, "min_cpus": spec.min_cpus,
        "min_memory": spec.min_memory, "error_pattern": spec.error_pattern,
        "depends_on": dict(spec.depends_on), "replicas": spec.replicas,
        "metrics": spec.metrics,
    }


def stored(service: Service, depends_on: dict[str, str], target: Mapping | None = None) -> dict:
    """The stored service in the same terms; `target` is the revision a release under way
    moves it to (what it will be)."""
    revision = dict(target) if target is not None else definitions.revision_of(service)
    return {
        **{name: revision.get(name) for name in REVISION_FIELDS},
        "environment": dict(revision.get("environment") or {}),
        "cpus": float(revision.get("cpus")),
        "port": bool(service.ports), "constraints": list(service.constraints or []),
        "strategy": service.strategy, "capabilities": list(service.capabilities or []),
        "pids_limit": service.pids_limit, "read_only": service.read_only,
        "cluster": service.cluster, "pool": service.pool, "idc": service.idc,
        "min_cpus": service.min_cpus, "min_memory": service.min_memory,
        "error_pattern": service.error_pattern, "depends_on": depends_on,
        "replicas": service.replicas, "metrics": service.metrics,
    }


def plan(application: str, current: Mapping[str, dict], desired: Mapping[str, dict],
         *, autoscaled: frozenset[str] = frozenset(),
         releasing: Mapping[str, int] | None = None
         ) -> tuple[list[ServiceChange], list[str], list[str]]:
    """Per service, what differs between `current` and `desired` (both as `wanted` gives
    them); Conflict for what cannot change in place. `autoscaled` services keep their
    replicas (the autoscaler owns them, said in the notes); `releasing` maps a service to its
    release under way. Returns the changes, the unchanged services' names and notes."""
    releasing = releasing or {}
    added, removed = sorted(set(desired) - set(current)), sorted(set(current) - set(desired))
    if added or removed:
        what = "; ".join(part for part in (
            f"adds {', '.join(added)}" if added else "",
            f"removes {', '.join(removed)}" if removed else "") if part)
        raise Conflict(f"the definition {what}: Berth cannot add or remove services of "
                       f"application {application} in place; "
                       + RECREATE.format(name=application))
    changed, unchanged, notes = [], [], []
    for name in sorted(desired):
        now, want = current[name], desired[name]
        fixed = [f for f in FIXED_FIELDS if now[f] != want[f]]
        if fixed:
            figures = ", ".join(f"{f} {now[f]!r} -> {want[f]!r}" for f in fixed)
            raise Conflict(f"service {name}: {figures}: Berth cannot change "
                           f"{', '.join(fixed)} of a service in place; "
                           + RECREATE.format(name=application))
        change = ServiceChange(name)
        change.changes = {f: {"from": now[f], "to": want[f]} for f in REVISION_FIELDS
                          if now[f] != want[f]}
        if change.changes and name in releasing:
            raise Conflict(f"service {name}: release {releasing[name]} is under way to another "
                           f"revision; wait for it, or promote or roll it back, then apply again")
        if now["replicas"] != want["replicas"]:
            if name in autoscaled:
                change.note = (f"replicas {want['replicas']} not applied: the autoscaler owns "
                               f"them ({now['replicas']} now); turn autoscaling off to set them")
            elif name in releasing:
                raise Conflict(f"service {name}: release {releasing[name]} is under way; scale "
                               f"it once the release is over")
            else:
                change.replicas = (now["replicas"], want["replicas"])
        change.settings = {f: {"from": now[f], "to": want[f]} for f in SETTINGS_FIELDS
                           if now.get(f) != want.get(f)}
        if change.replicas or change.changes or change.settings:
            changed.append(change)
        else:
            unchanged.append(name)
            if change.note:
                notes.append(f"{name}: {change.note}")
    return changed, unchanged, notes


def apply_existing(application: Application, raw: Mapping, *, actor: str, config: Config,
                   dry_run: bool = False) -> dict:
    """Make `application` what `raw` (a definition) says, service by service: replicas by a
    scale, image ... healthcheck by a release (with the service's update_config)."""
    name, specs, levels = definitions.parse_application(dict(raw))
    if application.deleting_since is not None:
        raise Conflict(f"application {name} is being torn down; apply it again when it is gone")
    project = raw.get("project")
    if project is not None and project != application.project.name:
        raise Conflict(f"application {name} is in project {application.project.name}, not "
                       f"{project}: Berth does not move applications between projects; "
                       + RECREATE.format(name=name))
    configs = update_configs(raw, [s.name for s in specs])
    graph = definitions.dependency_graph(application)
    services = {s.name: s for s in application.services}
    active = {n: releases.active_release(s) for n, s in services.items()}
    current = {}
    for n, service in services.items():
        release = active[n]
        target = None
        if release is not None:
            target = releases.get_revision(service, release.to_revision).spec
        current[n] = stored(service, dict(graph.get(n, [])), target)
    autoscaled = frozenset(n for n, s in services.items()
                           if s.autoscaling is not None and s.autoscaling.enabled)
    changed, unchanged, notes = plan(name, current, {s.name: wanted(s) for s in specs},
                              autoscaled=autoscaled,
                              releasing={n: r.id for n, r in active.items() if r is not None})
    by_name = {s.name: s for s in specs}
    answer = {"application": name, "created": False, "dry_run": dry_run,
              "changed": [], "unchanged": unchanged, "notes": notes, "levels": levels}
    placer = _placer(config) if dry_run else None
    for change in changed:
        entry = change.as_dict()
        entry["release"] = None
        entry["placements"] = []
        service = services[change.service]
        if dry_run:
            if change.replicas and change.replicas[1] > change.replicas[0]:
                entry["placements"] = place(placer, name, by_name[change.service],
                                            change.replicas[1] - change.replicas[0])
            if change.changes:
                entry["note"] = _join(entry["note"], "a release replaces every replica with "
                                      "the new revision, placed batch by batch as it goes")
        else:
            for setting, values in change.settings.items():
                setattr(service, setting, values["to"])
            if change.settings:
                audit.record("service.update", f"{name}/{change.service}: "
                             f"{', '.join(change.settings)} changed", actor=actor,
                             subject_type="service", subject=f"{name}/{change.service}")
            if change.replicas:
                workloads.scale(service, change.replicas[1], actor=actor, reason="apply")
            if change.changes:
                body = {"changes": {f: c["to"] for f, c in change.changes.items()}}
                if change.service in configs:
                    body["update_config"] = configs[change.service]
                release = releases.start(service, body, actor=actor, config=config)
                entry["release"] = release.id
        answer["changed"].append(entry)
    return answer


def plan_new(raw: Mapping, *, config: Config | None = None, dry_run: bool = True,
             project=None) -> dict:
    """What creating the application does: every service, in the order they start; with
    dry_run (and `config`), where each replica would be placed and why. Over `project`'s
    quota it is refused, as creating it would be."""
    name, specs, levels = definitions.parse_application(dict(raw))
    update_configs(raw, [s.name for s in specs])
    if project is not None:
        asked = sum((quotas.of_service(s.replicas, float(s.cpus), s.memory) for s in specs),
                    quotas.Usage())
        quotas.check(project, asked, f"application {name}")
    placer = _placer(config) if dry_run else None
    by_name = {s.name: s for s in specs}
    changed = []
    for level in levels:
        for service in level:
            spec = by_name[service]
            changed.append({"service": service, "replicas": {"from": 0, "to": spec.replicas},
                            "changes": {}, "note": "new service", "release": None,
                            "placements": place(placer, name, spec, spec.replicas)
                            if dry_run else []})
    return {"application": name, "created": True, "dry_run": dry_run, "changed": changed,
            "unchanged": [], "notes": [], "levels": levels}


def _placer(config: Config):
    from berth.hosts.placement import host_snapshots
    from scheduler.placement import Placer

    return Placer(host_snapshots(utcnow(), config.probe_interval_s))


def place(placer, application: str, spec: ServiceSpec, count: int) -> list[dict]:
    """Where `count` more containers of `spec` would go now, and why (each seeing the ones
    before it, across the services of this apply); stops at the first that fits nowhere."""
    from scheduler.orchestration.capacity import request_for
    from scheduler.orchestration.state import ServiceState

    state = ServiceState(
        name=spec.name, image=spec.image, replicas=spec.replicas, cpus=float(spec.cpus),
        memory=spec.memory, wants_port=bool(spec.port), constraints=tuple(spec.constraints),
        strategy=spec.strategy, cluster=spec.cluster, pool=spec.pool, idc=spec.idc,
        min_cpus=spec.min_cpus, min_memory=spec.min_memory)
    out = []
    for _ in range(count):
        decision = placer.place(request_for(application, state))
        out.append({"host": decision.host_name, "explanation": decision.explanation})
        if not decision.placed:
            break
    return out


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b
