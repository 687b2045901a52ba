"""Checking and storing an application's services: everything validated before anything
starts, so a bad definition is a 400 that says what to fix and leaves nothing behind."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select

from berth import audit, db
from berth.errors import Conflict, InvalidInput, NotFound
from berth.models import Application, Service, ServiceDependency
from scheduler.orchestration.dependencies import DependencyError, plan_levels
from scheduler.placement import parse_constraint

NAME_RULE = "1-40 characters: lowercase letters, digits and '-', starting with a letter"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._:/-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$")
MAX_REPLICAS = 500
MIN_MEMORY = 4 * 2**20
CONDITIONS = ("started", "healthy")
STRATEGIES = ("spread", "binpack")


@dataclass
class ServiceSpec:
    """One service as an operator wrote it, checked."""

    name: str
    image: str
    replicas: int = 1
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    cpus: float = 0.1
    memory: int = 64 * 2**20
    port: bool = False  # gets a host port from its host's range, passed as $PORT
    constraints: list[str] = field(default_factory=list)
    strategy: str = "spread"
    healthcheck: dict | None = None
    depends_on: dict[str, str] = field(default_factory=dict)  # name -> condition


def _fail(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}")


def check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"invalid {kind} name {name!r}: {NAME_RULE}")
    return name


def parse_service(raw: dict) -> ServiceSpec:
    if not isinstance(raw, dict):
        raise InvalidInput("each service must be an object")
    name = check_name("service", raw.get("name"))
    where = f"service {name}"
    known = set(ServiceSpec.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    spec = ServiceSpec(**{k: v for k, v in raw.items() if v is not None})
    if not isinstance(spec.image, str) or not _IMAGE.match(spec.image):
        raise _fail(where, f"image {spec.image!r} must be repository:tag or repository@sha256:digest")
    if not isinstance(spec.replicas, int) or not 0 <= spec.replicas <= MAX_REPLICAS:
        raise _fail(where, f"replicas must be a whole number from 0 to {MAX_REPLICAS}")
    if spec.command is not None and not (isinstance(spec.command, list)
                                         and all(isinstance(a, str) for a in spec.command)):
        raise _fail(where, "command must be a list of strings")
    if not isinstance(spec.environment, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in spec.environment.items()):
        raise _fail(where, "environment must map names to strings")
    if not isinstance(spec.cpus, (int, float)) or not 0 < spec.cpus <= 256:
        raise _fail(where, "cpus must be more than 0 and at most 256")
    if not isinstance(spec.memory, int) or spec.memory < MIN_MEMORY:
        raise _fail(where, f"memory must be bytes, at least {MIN_MEMORY} (4 MiB)")
    for constraint in spec.constraints:
        try:
            parse_constraint(constraint)
        except (ValueError, TypeError) as error:
            raise _fail(where, str(error)) from error
    if spec.strategy not in STRATEGIES:
        raise _fail(where, f"strategy must be one of {', '.join(STRATEGIES)}")
    if spec.healthcheck is not None:
        test = spec.healthcheck.get("test") if isinstance(spec.healthcheck, dict) else None
        if not (isinstance(test, list) and test and all(isinstance(a, str) for a in test)):
            raise _fail(where, 'healthcheck.test must be a list like ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:$PORT/"]')
    if not isinstance(spec.depends_on, dict):
        raise _fail(where, 'depends_on must map service names to "started" or "healthy"')
    for dependency, condition in spec.depends_on.items():
        if condition not in CONDITIONS:
            raise _fail(where, f"condition for {dependency} must be started or healthy")
    return spec


def parse_application(raw: dict) -> tuple[str, list[ServiceSpec], list[list[str]]]:
    """Name, services and their start levels; InvalidInput names the first problem."""
    if not isinstance(raw, dict):
        raise InvalidInput("an application is an object with name and services")
    name = check_name("application", raw.get("name"))
    services = [parse_service(s) for s in raw.get("services") or []]
    if not services:
        raise InvalidInput(f"application {name} needs at least one service")
    names = [s.name for s in services]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"service names must be unique; repeated: {', '.join(duplicates)}")
    graph = {s.name: list(s.depends_on.items()) for s in services}
    try:
        levels = plan_levels(graph)
    except DependencyError as error:
        raise InvalidInput(str(error)) from error
    return name, services, levels


def find_application(name: str) -> Application | None:
    return db.session.scalar(select(Application).where(Application.name == name))


def get_application(name: str) -> Application:
    application = find_application(name)
    if application is None:
        raise NotFound(f"no application named {name!r}")
    return application


def create_application(raw: dict, *, actor: str) -> Application:
    name, specs, _levels = parse_application(raw)
    existing = find_application(name)
    if existing is not None:
        raise Conflict(f"application {name!r} is still being torn down; try again when it is gone"
                       if existing.deleting_since else f"application {name!r} already exists")
    application = Application(name=name)
    db.session.add(application)
    by_name = {}
    for spec in specs:
        service = Service(
            application=application, name=spec.name, image=spec.image, command=spec.command,
            environment=spec.environment, ports=[0] if spec.port else [], cpus=float(spec.cpus),
            memory=spec.memory, constraints=list(spec.constraints), strategy=spec.strategy,
            healthcheck=spec.healthcheck, replicas=spec.replicas, status="pending")
        db.session.add(service)
        by_name[spec.name] = service
    db.session.flush()
    for spec in specs:
        for dependency, condition in spec.depends_on.items():
            db.session.add(ServiceDependency(service_id=by_name[spec.name].id,
                                             depends_on_id=by_name[dependency].id,
                                             condition=condition))
    audit.record("application.create", f"defined application {name} ({len(specs)} services)",
                 subject_type="application", subject=name, actor=actor)
    return application


def dependency_graph(application: Application) -> dict[str, list[tuple[str, str]]]:
    names = {s.id: s.name for s in application.services}
    graph = {name: [] for name in names.values()}
    rows = db.session.scalars(select(ServiceDependency).where(
        ServiceDependency.service_id.in_(list(names))))
    for row in rows:
        graph[names[row.service_id]].append((names[row.depends_on_id], row.condition))
    return graph
