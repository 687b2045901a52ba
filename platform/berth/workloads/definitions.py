"""Checking and storing an application's services: everything validated before anything
starts, so a bad definition is a 400 that says what to fix and leaves nothing behind."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select

from berth import audit, db
from berth.errors import Conflict, InvalidInput, NotFound
from berth.models import Application, Project, Service, ServiceDependency, ServiceRevision
from scheduler.orchestration.dependencies import DependencyError, plan_levels
from scheduler.placement import parse_constraint

NAME_RULE = "1-40 characters: lowercase letters, digits and '-', starting with a letter"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._:/-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$")
MAX_REPLICAS = 500
MIN_MEMORY = 4 * 2**20
CONDITIONS = ("started", "healthy")
STRATEGIES = ("spread", "binpack")
# Containers start with every capability dropped; a service may add back only these (what
# ordinary servers need: bind low ports, drop to a user, own files). SYS_ADMIN, NET_ADMIN,
# SYS_PTRACE and the like would let a container reach beyond itself.
CAPABILITIES = ("NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE", "FOWNER",
                "KILL", "NET_RAW")
PIDS_LIMIT = 512  # enough for any ordinary server, and a fork bomb stays inside it
MAX_PIDS_LIMIT = 32768


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
    capabilities: list[str] = field(default_factory=list)  # added back, from CAPABILITIES
    pids_limit: int = PIDS_LIMIT
    read_only: bool = False  # a read-only root filesystem
    # Where its containers may go (besides constraints): these pick hosts by inventory.
    cluster: str | None = None
    pool: str | None = None
    idc: str | None = None
    min_cpus: float | None = None  # hosts with at least this hardware
    min_memory: int | None = None
    error_pattern: str = "ERROR|WARN"  # log lines that count as errors (canary analysis)
    metrics: dict | None = None  # its Prometheus endpoint (berth.monitoring.promql.MetricsSpec)


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
    check_healthcheck(where, spec.healthcheck)
    if not isinstance(spec.depends_on, dict):
        raise _fail(where, 'depends_on must map service names to "started" or "healthy"')
    for dependency, condition in spec.depends_on.items():
        if condition not in CONDITIONS:
            raise _fail(where, f"condition for {dependency} must be started or healthy")
    check_hardening(where, spec.capabilities, spec.pids_limit, spec.read_only)
    check_placement(where, spec)
    spec.metrics = check_metrics(where, spec.metrics, bool(spec.port))
    return spec


METRICS_FIELDS = ("port", "path", "histogram", "status_label")
HEALTHCHECK_FIELDS = ("test", "interval_s", "timeout_s", "retries", "start_period_s")


def check_healthcheck(where: str, check: object) -> None:
    """A service's `healthcheck: {test, interval_s, timeout_s, retries, start_period_s}`. A
    misspelt or mistyped field is refused rather than left for the engine's default, which
    would check health on another rhythm than the one written."""
    if check is None:
        return
    test = check.get("test") if isinstance(check, dict) else None
    if not (isinstance(test, list) and test and all(isinstance(a, str) for a in test)):
        raise _fail(where, 'healthcheck.test must be a list like ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:$PORT/"]')
    unknown = sorted(set(check) - set(HEALTHCHECK_FIELDS))
    if unknown:
        raise _fail(where, f"healthcheck: unknown field(s) {', '.join(unknown)}; "
                           f"known: {', '.join(HEALTHCHECK_FIELDS)}")
    for name in ("interval_s", "timeout_s", "start_period_s"):
        value = check.get(name)
        # The engine takes 0 (its default) or at least a millisecond.
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not (value == 0 or 0.001 <= value <= 86400)):
            raise _fail(where, f"healthcheck.{name} must be seconds: 0 (the engine's default) "
                               "or from 0.001 to 86400")
    retries = check.get("retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)
                                or not 0 <= retries <= 100):
        raise _fail(where, "healthcheck.retries must be a whole number from 0 to 100")


def check_metrics(where: str, metrics: object, has_port: bool) -> dict | None:
    """A service's `metrics: {port, path, histogram, status_label}`, checked and filled in.
    A Berth service has one port, its $PORT (0 in its ports until a host allocates it), so
    `port` may only be that one (0, or left out)."""
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        raise _fail(where, "metrics must be an object {port, path, histogram, status_label}")
    unknown = sorted(set(metrics) - set(METRICS_FIELDS))
    if unknown:
        raise _fail(where, f"metrics: unknown field(s) {', '.join(unknown)}; "
                           f"known: {', '.join(METRICS_FIELDS)}")
    if not has_port:
        raise _fail(where, "metrics needs a port: declare port: true (its $PORT serves them)")
    port = metrics.get("port", 0)
    if isinstance(port, bool) or port not in (0, "$PORT"):
        raise _fail(where, f"metrics.port {port!r} is not one of the service's ports: it has "
                           "one, its $PORT (write 0 or \"$PORT\", or leave it out)")
    from berth.monitoring.promql import DEFAULT_HISTOGRAM, DEFAULT_STATUS_LABEL
    out = {"port": 0, "path": metrics.get("path") or "/metrics",
           "histogram": metrics.get("histogram") or DEFAULT_HISTOGRAM,
           "status_label": metrics.get("status_label") or DEFAULT_STATUS_LABEL}
    if not (isinstance(out["path"], str) and out["path"].startswith("/") and len(out["path"]) <= 255):
        raise _fail(where, "metrics.path must be a URL path starting with /")
    for name in ("histogram", "status_label"):
        if not (isinstance(out[name], str) and re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]{0,127}", out[name])):
            raise _fail(where, f"metrics.{name} must be a Prometheus name")
    return out


def check_placement(where: str, spec: ServiceSpec) -> None:
    for name in ("cluster", "pool", "idc"):
        value = getattr(spec, name)
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 64):
            raise _fail(where, f"{name} must be a name (1-64 characters)")
    if spec.min_cpus is not None and (isinstance(spec.min_cpus, bool) or not isinstance(
            spec.min_cpus, (int, float)) or not 0 < spec.min_cpus <= 1024):
        raise _fail(where, "min_cpus must be more than 0 and at most 1024")
    if spec.min_memory is not None and (isinstance(spec.min_memory, bool) or not isinstance(
            spec.min_memory, int) or spec.min_memory < MIN_MEMORY):
        raise _fail(where, "min_memory must be bytes, at least 4 MiB")
    check_error_pattern(where, spec.error_pattern)


def check_error_pattern(where: str, pattern: object) -> None:
    if not isinstance(pattern, str) or not 0 < len(pattern) <= 256:
        raise _fail(where, "error_pattern must be a regular expression of 1-256 characters")
    try:
        re.compile(pattern)
    except re.error as error:
        raise _fail(where, f"error_pattern {pattern!r} is not a regular expression: {error}") from error


def check_hardening(where: str, capabilities: object, pids_limit: object,
                    read_only: object) -> None:
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise _fail(where, "capabilities must be a list of names like [\"NET_BIND_SERVICE\"]")
    refused = sorted({c for c in capabilities if c.upper().removeprefix("CAP_") not in CAPABILITIES})
    if refused:
        raise _fail(where, f"capabilities {', '.join(refused)} are not allowed; "
                           f"allowed: {', '.join(CAPABILITIES)}")
    if isinstance(pids_limit, bool) or not isinstance(pids_limit, int) or not (
            16 <= pids_limit <= MAX_PIDS_LIMIT):
        raise _fail(where, f"pids_limit must be a whole number from 16 to {MAX_PIDS_LIMIT}")
    if not isinstance(read_only, bool):
        raise _fail(where, "read_only must be true or false")


def capability_names(capabilities: list[str]) -> list[str]:
    """As Docker takes them (NET_BIND_SERVICE), however they were written; sorted, unique."""
    return sorted({c.upper().removeprefix("CAP_") for c in capabilities})


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


def create_application(raw: dict, *, actor: str, project: Project | None = None) -> Application:
    """The application and its services, in `project` (by default the default project),
    within the project's quota."""
    from berth.workloads import access, quotas

    name, specs, _levels = parse_application(raw)
    existing = find_application(name)
    if existing is not None:
        raise Conflict(f"application {name!r} is still being torn down; try again when it is gone"
                       if existing.deleting_since else f"application {name!r} already exists")
    project = project or access.project_for_new_by_default()
    asked = sum((quotas.of_service(s.replicas, float(s.cpus), s.memory) for s in specs), quotas.Usage())
    quotas.check(project, asked, f"application {name}")
    application = Application(name=name, project=project)
    db.session.add(application)
    by_name = {}
    for spec in specs:
        service = Service(
            application=application, name=spec.name, image=spec.image, command=spec.command,
            environment=spec.environment, ports=[0] if spec.port else [], cpus=float(spec.cpus),
            memory=spec.memory, constraints=list(spec.constraints), strategy=spec.strategy,
            healthcheck=spec.healthcheck, replicas=spec.replicas, status="pending",
            capabilities=capability_names(spec.capabilities), pids_limit=spec.pids_limit,
            read_only=spec.read_only, cluster=spec.cluster, pool=spec.pool, idc=spec.idc,
            min_cpus=spec.min_cpus, min_memory=spec.min_memory, error_pattern=spec.error_pattern,
            metrics=spec.metrics)
        service.revisions.append(ServiceRevision(number=1, spec=revision_of(service), created_by=actor))
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


# What a revision fixes: changing any of these makes the next revision.
REVISION_FIELDS = ("image", "command", "environment", "cpus", "memory", "healthcheck")


def revision_of(service: Service) -> dict:
    """The service's spec as a revision stores it, whole."""
    return {name: getattr(service, name) for name in REVISION_FIELDS}


def dependency_graph(application: Application) -> dict[str, list[tuple[str, str]]]:
    names = {s.id: s.name for s in application.services}
    graph = {name: [] for name in names.values()}
    rows = db.session.scalars(select(ServiceDependency).where(
        ServiceDependency.service_id.in_(list(names))))
    for row in rows:
        graph[names[row.service_id]].append((names[row.depends_on_id], row.condition))
    return graph
