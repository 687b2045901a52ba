"""One reconcile pass over an application: observe the engines, record what runs, then act
on the pure plan (scheduler.orchestration) until the real state meets the desired one.

Level-triggered and idempotent: containers carry labels and deterministic names, so a pass
that died half-way is finished by the next one, which finds (adopts) what was created.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from berth import audit, db
from berth.clock import utcnow
from berth.config import Config
from berth.engine import (
    LABEL_APPLICATION, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_REVISION, LABEL_SERVICE, LABEL_SLOT,
    ContainerSpec, EngineError,
)
from berth.hosts.placement import host_snapshots, request_for
from berth.hosts.services import Connect, default_connect
from berth.models import Application, ContainerInstance, Service
from berth.projects import pull_credentials
from berth.registry_auth import project_of
from berth.workloads.definitions import dependency_graph
from berth.workloads.observe import HostView, Seen, observe, read_hosts
from scheduler.orchestration import dependencies
from scheduler.orchestration.reconcile import (
    Create, DesiredService, ObservedContainer, Remove, Replace, reconcile,
)
from scheduler.orchestration.reconcile import container_name as planner_name
from scheduler.placement import Placer

LEASE = timedelta(seconds=120)
# Engine calls of one pass (pulls, creates+starts, removals) run in parallel, host by host in
# turn: at most PER_HOST_PARALLEL at once on one engine, MAX_PARALLEL in all. A start mostly
# waits (the container's first process runs inside its CPU quota: ~2 s at 0.01 CPU), so 16 per
# engine beat 8 (benchmarks/deploy.py); 32 gained nothing more on a 2-core test bed.
PER_HOST_PARALLEL = 16
MAX_PARALLEL = 64
HEALTHY = ("healthy", None)
# Docker's container states as the planner knows them.
PLANNER_STATE = {"created": "created", "running": "running", "restarting": "running",
                 "paused": "running", "exited": "exited", "removing": "dead", "dead": "dead"}


class _Lanes:
    """A thread pool for one pass's engine calls, bounded per host (see PER_HOST_PARALLEL)."""

    def __init__(self, host_ids: Iterable[int]):
        hosts = set(host_ids)
        self._limits = {h: threading.BoundedSemaphore(PER_HOST_PARALLEL) for h in hosts}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(MAX_PARALLEL, PER_HOST_PARALLEL * len(hosts))))

    def submit(self, host_id: int, call: Callable, *args, after: Future | None = None) -> Future:
        """Run call(*args) on `host_id`'s lane, once `after` (if any) is done; its error is ours."""
        def run():
            if after is not None:
                after.result()  # waited for outside the host's limit: it takes no engine slot
            with self._limits[host_id]:
                return call(*args)
        return self._pool.submit(run)

    def __enter__(self) -> "_Lanes":
        return self

    def __exit__(self, *exc_info) -> None:
        self._pool.shutdown(wait=True)


def _round_robin(items: list, host_of: Callable) -> list:
    """`items` reordered host by host in turn, each host's own order kept, so that a FIFO pool
    works on every host from the start instead of on the first host's whole share first."""
    queues: dict[int, list] = {}
    for item in items:
        queues.setdefault(host_of(item), []).append(item)
    ordered, turn = [], 0
    while len(ordered) < len(items):
        for queue in queues.values():
            if turn < len(queue):
                ordered.append(queue[turn])
        turn += 1
    return ordered


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


def _acquire(app_id: int, now: datetime) -> bool:
    taken = db.session.execute(
        update(Application)
        .where(Application.id == app_id, or_(Application.reconcile_lease_until.is_(None),
                                              Application.reconcile_lease_until < now))
        .values(reconcile_lease_until=now + LEASE))
    db.session.commit()
    return taken.rowcount == 1


def _release(app_id: int) -> None:
    db.session.execute(update(Application).where(Application.id == app_id)
                       .values(reconcile_lease_until=None))
    db.session.commit()


def container_name(application: str, service: str, revision: int, slot: int) -> str:
    """Deterministic: `shop-api-3-0` is slot 0 of revision 3 of shop's api."""
    return planner_name(f"{application}-{service}", str(revision), slot)


def reconcile_application(app_id: int, config: Config, *, connect: Connect = default_connect
                          ) -> PassResult | None:
    """None when another pass holds the application; the caller simply tries later."""
    now = utcnow()
    if not _acquire(app_id, now):
        return None
    try:
        result = _Pass(app_id, config, connect, now).run()
        db.session.commit()  # what the pass did and saw, before the lease goes
        return result
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _release(app_id)


class _Pass:
    def __init__(self, app_id: int, config: Config, connect: Connect, now: datetime):
        self.app_id, self.config, self.connect, self.now = app_id, config, connect, now
        self.result = PassResult()

    # -- reading --------------------------------------------------------------------------

    def run(self) -> PassResult:
        app = db.session.get(Application, self.app_id)
        self.app_name = app.name
        self.hosts = {v.id: v for v in read_hosts(self.config, self.now)}
        db.session.commit()  # no transaction held while the engines answer
        seen, unreadable = observe(self.app_name, list(self.hosts.values()), self.connect)
        self.down = {v.id for v in self.hosts.values() if not v.alive} | unreadable
        self.draining = {h.id for h in self.hosts.values() if h.admin_state == "draining"}
        app = db.session.get(Application, self.app_id)
        self._record(app, seen)
        self._act(app)
        return self.result

    def _record(self, app: Application, seen: list[Seen]) -> None:
        """Make the instance rows say what the engines said; adopt what an earlier pass
        created but could not record. A name has one row (names are unique), which follows
        the container the planner keeps when a slot briefly has two."""
        services = {s.name: s for s in app.services}
        self.rows = {i.name: i for s in app.services for i in s.instances}
        self.seen = [item for item in seen if item.service in services]
        for item in self.seen:
            row = self.rows.get(item.container.name)
            if row is not None and row.state != "removed" and row.host_id != item.host_id \
                    and row.host_id not in self.down:
                continue  # a twin of a live container elsewhere; the plan removes one
            if row is None or row.state == "removed":
                row = self._row(services[item.service], item.slot, item.revision, item.container.name)
                audit.record("instance.adopt", f"adopted {row.name}", subject_type="service",
                             subject=f"{self.app_name}/{item.service}")
            row.host_id, row.container_id = item.host_id, item.container.id
            row.state, row.health = item.container.status, item.container.health
        seen_names = {(item.container.name, item.host_id) for item in self.seen}
        for row in self.rows.values():
            if row.state != "removed" and (row.name, row.host_id) not in seen_names:
                row.state = "lost" if row.host_id in self.down else "missing"

    def _row(self, service: Service, slot: int, revision: int, name: str) -> ContainerInstance:
        """The row for `name`, reused if one exists (a removed slot coming back)."""
        row = self.rows.get(name)
        if row is None:
            row = ContainerInstance(service=service, slot=slot, revision=revision, name=name)
            db.session.add(row)
            self.rows[name] = row
        row.slot, row.revision, row.health, row.cpu_percent = slot, revision, None, None
        return row

    # -- deciding and acting --------------------------------------------------------------

    def _status(self, service: Service) -> str:
        running = [r for r in self.rows.values()
                   if r.service is service and r.state == "running"]
        healthy = [r for r in running if r.health in HEALTHY]
        if service.replicas and len(healthy) >= service.replicas:
            return "healthy"
        if service.replicas == 0:
            return "healthy"
        return "started" if running else "pending"

    def _act(self, app: Application) -> None:
        graph = dependency_graph(app)
        if app.deleting_since is not None:
            self._teardown(app, graph)
            return
        status = {s.name: self._status(s) for s in app.services}
        for service in app.services:
            if status[service.name] != "pending":  # what was observed, before acting on it
                self._set_status(service, status[service.name], None)
        may_start = set(dependencies.ready_to_start(graph, status))
        blocked = [s for s in app.services
                   if status[s.name] == "pending" and s.name not in may_start]
        self._hold(app, graph, status, blocked)
        creates: list[tuple[Service, Create]] = []
        removals: list[tuple[str, int | None]] = []
        self.after_creates: list[tuple[str, int]] = []
        for service in app.services:
            if service in blocked:
                continue
            service.waiting_since = None
            actions = self._plan(service, service.replicas)
            for action in actions:
                if isinstance(action, Remove):
                    removals.append((action.name, action.host_id))
                elif isinstance(action, Replace):
                    if action.remove_first:  # it serves nothing and holds the name
                        removals.append((action.name, action.host_id))
                    else:  # its host is down or draining: new capacity first, elsewhere
                        self.after_creates.append((action.name, action.host_id))
                    creates.append((service, Create(service.name, action.revision, action.slot)))
                elif isinstance(action, Create):
                    creates.append((service, action))
            if actions:
                self.result.converged = False
        # Removals first (a replaced container may hold its successor's name), then creates,
        # then what new capacity replaces; each batch in parallel on the engines.
        self._remove_all(removals)
        self._create_all(creates)
        self._remove_all(self.after_creates)
        for service in app.services:
            final = self._status(service)
            if service.name not in self.result.waiting and service.name not in self.result.failed \
                    and service.name not in self.result.problems:
                self._set_status(service, final, None)  # waiting or failing keep their detail
            if final != "healthy":
                self.result.converged = False
            self._bump_endpoints(service)

    def _hold(self, app: Application, graph, status: dict[str, str], blocked: list[Service]) -> None:
        """Services whose dependencies are not met wait, with a visible reason, up to the
        dependency deadline (timed from the later of when the wait began and the operator's
        last deploy or scale); then they, and whatever needs them, are failed. A failed
        service still starts if its dependencies come good: each pass decides afresh."""
        timeout = self.config.dependency_timeout_s
        timed_out = set()
        for service in blocked:
            if service.waiting_since is None:
                continue
            since = max(service.waiting_since, app.deploy_started_at or service.waiting_since)
            if dependencies.deadline_exceeded(since.timestamp(), self.now.timestamp(), timeout):
                timed_out.add(service.name)
        seen_as = {**status, **{name: dependencies.FAILED for name in timed_out}}
        doomed = set(dependencies.cannot_start(graph, seen_as))
        for service in blocked:
            reasons = ", ".join(dependencies.blocked_by(graph, seen_as, service.name))
            self.result.converged = False
            if service.name in timed_out:
                detail = f"gave up after {timeout:g} s {reasons}"
            elif service.name in doomed:
                detail = f"cannot start: {reasons}"
            else:
                self._set_status(service, "waiting", reasons)
                self.result.waiting[service.name] = reasons
                continue
            self._set_status(service, "failed", detail)
            self.result.failed[service.name] = detail

    def _plan(self, service: Service, replicas: int):
        return reconcile([DesiredService(self._key(service), str(service.revision), replicas)],
                         self._observed(service), down_hosts=self.down,
                         draining_hosts=self.draining).actions

    # -- tearing down ---------------------------------------------------------------------

    def _teardown(self, app: Application, graph) -> None:
        """Remove the services' containers dependents first: a level goes only once every
        level before it is gone. Containers on a down host stay recorded (it may come back,
        or be removed from the inventory), so the application row goes only when nothing
        of it is left anywhere."""
        self.result.converged = False
        by_name = {s.name: s for s in app.services}
        remaining = []
        for level in dependencies.teardown_order(graph):
            if remaining:
                for name in level:
                    self._set_status(by_name[name], "stopping",
                                     f"waiting for {', '.join(remaining)} to stop")
                continue
            for name in level:
                service = by_name[name]
                removals = [(a.name, a.host_id) for a in self._plan(service, 0)
                            if isinstance(a, Remove) and a.host_id not in self.down]
                self._remove_all(removals)
                left = [r for r in self.rows.values()
                        if r.service is service and r.state != "removed"]
                if left:
                    on_down = sorted({self.hosts[r.host_id].name for r in left
                                      if r.host_id in self.hosts and r.host_id in self.down})
                    self._set_status(service, "stopping", f"{len(left)} container(s) left"
                                     + (f" on down host(s) {', '.join(on_down)}" if on_down else ""))
                    remaining.append(name)
                else:
                    self._set_status(service, "stopped", None)
                self._bump_endpoints(service)
        if not remaining:
            self._delete(app)

    def _delete(self, app: Application) -> None:
        # The foreign keys cascade: services, their dependencies, instance rows and policies go too.
        db.session.execute(delete(Application).where(Application.id == app.id))
        audit.record("application.delete", f"tore down application {self.app_name}",
                     subject_type="application", subject=self.app_name)
        self.result.deleted = True

    def _key(self, service: Service) -> str:
        """The planner's name for a service: unique across applications."""
        return f"{self.app_name}-{service.name}"

    def _observed(self, service: Service) -> list[ObservedContainer]:
        """What the engines showed, plus recorded instances they did not show (missing)."""
        key = self._key(service)
        observed = [ObservedContainer(
            name=item.container.name, service=key, slot=item.slot,
            revision=str(item.revision), host_id=item.host_id,
            state=PLANNER_STATE.get(item.container.status, "dead"), health=item.container.health)
            for item in self.seen if item.service == service.name]
        shown = {(o.name, o.host_id) for o in observed}
        for row in self.rows.values():
            if row.service is service and row.state in ("missing", "lost") \
                    and (row.name, row.host_id) not in shown:
                observed.append(ObservedContainer(
                    name=row.name, service=key, slot=row.slot, revision=str(row.revision),
                    host_id=row.host_id, state="missing"))
        return observed

    def _set_status(self, service: Service, status: str, detail: str | None) -> None:
        if status == "waiting" and service.waiting_since is None:
            service.waiting_since = self.now
        if status != service.status:
            audit.record(f"service.{status}", f"{self.app_name}/{service.name} is {status}"
                         + (f": {detail}" if detail else ""), subject_type="service",
                         subject=f"{self.app_name}/{service.name}")
        service.status, service.status_detail = status, detail

    def _remove_all(self, removals: list[tuple[str, int | None]]) -> None:
        """Remove each container `name` from `host_id`, the engine calls in parallel; then, in
        the given order, end each one's row unless a twin lives on."""
        reachable = [(i, name, host_id) for i, (name, host_id) in enumerate(removals)
                     if host_id is not None and host_id in self.hosts and host_id not in self.down]
        failed: set[int] = set()
        if reachable:
            with _Lanes(host_id for _i, _n, host_id in reachable) as lanes:
                futures = [(i, lanes.submit(host_id, self._remove_on_engine, name, host_id))
                           for i, name, host_id in _round_robin(reachable, lambda item: item[2])]
            for i, future in futures:
                error = future.exception()
                if isinstance(error, EngineError):
                    failed.add(i)
                elif error is not None:
                    raise error
        for i, (name, host_id) in enumerate(removals):
            if i in failed:
                self.result.converged = False
                continue  # try again next pass
            self._forget(name, host_id)

    def _remove_on_engine(self, name: str, host_id: int) -> None:
        engine = self.connect(self.hosts[host_id].endpoint)
        try:
            engine.remove(name)
        finally:
            engine.close()

    def _forget(self, name: str, host_id: int | None) -> None:
        """Container `name` is gone from `host_id`: its row ends unless a twin lives on."""
        row = self.rows.get(name)
        if row is None or row.host_id != host_id:
            return  # the row belongs to the twin that stays
        twin = next((i for i in self.seen if i.container.name == name and i.host_id != host_id
                     and i.host_id not in self.down), None)
        if twin is not None:
            row.host_id, row.container_id = twin.host_id, twin.container.id
            row.state, row.health = twin.container.status, twin.container.health
        else:
            row.state = "removed"
        self.result.removed += 1

    def _create_all(self, creates: list[tuple[Service, Create]]) -> None:
        if not creates:
            return
        placer = Placer(host_snapshots(self.now, self.config.probe_interval_s))
        used_ports = self._used_ports()
        jobs = []
        for service, create in creates:
            decision = placer.place_replicas(request_for(service), 1)[0]
            if not decision.placed:
                self.result.problems[service.name] = decision.explanation
                self._set_status(service, "unschedulable", decision.explanation)
                self.result.converged = False
                continue
            host = self.hosts[decision.host_id]
            port = self._free_port(host, used_ports) if service.ports else None
            if service.ports and port is None:
                self._set_status(service, "unschedulable", f"no free port on {host.name}")
                continue
            name = container_name(self.app_name, service.name, int(create.revision), create.slot)
            jobs.append((service, create, host, port, name, self._spec(service, create, name, port)))
        if not jobs:
            return
        # Pulls first, once per host and image; each start after its pull. In turns over the
        # hosts, so every engine is busy from the start.
        order = _round_robin(list(range(len(jobs))), lambda i: jobs[i][2].id)
        pulls: dict[tuple[int, str], Future] = {}
        started: dict[int, Future] = {}
        with _Lanes(job[2].id for job in jobs) as lanes:
            for i in order:
                host, spec = jobs[i][2], jobs[i][5]
                key = (host.id, spec.image)
                if key not in pulls:
                    pulls[key] = lanes.submit(host.id, self._pull, host, spec.image)
            for i in order:
                host, spec = jobs[i][2], jobs[i][5]
                started[i] = lanes.submit(host.id, self._start, host, spec,
                                          after=pulls[(host.id, spec.image)])
        for i, (service, create, host, port, name, _spec) in enumerate(jobs):
            future = started[i]
            error = future.exception()
            if error is not None:
                self.result.problems[service.name] = str(error)
                self._set_status(service, "failing", str(error)[:1000])
                continue
            state = future.result()
            row = self._row(service, create.slot, int(create.revision), name)
            row.host_id, row.host_port, row.container_id = host.id, port, state.id
            row.state, row.health = "running", ("starting" if service.healthcheck else None)
            self.result.created += 1
            audit.record("instance.create", f"started {name} on {host.name}",
                         subject_type="service", subject=f"{self.app_name}/{service.name}")

    def _used_ports(self) -> dict[int, set[int]]:
        used: dict[int, set[int]] = {}
        rows = db.session.execute(select(ContainerInstance.host_id, ContainerInstance.host_port)
                                  .where(ContainerInstance.host_port.is_not(None),
                                         ContainerInstance.state != "removed"))
        for host_id, port in rows:
            used.setdefault(host_id, set()).add(port)
        return used

    @staticmethod
    def _free_port(host: HostView, used: dict[int, set[int]]) -> int | None:
        taken = used.setdefault(host.id, set())
        for port in range(host.port_range[0], host.port_range[1] + 1):
            if port not in taken:
                taken.add(port)
                return port
        return None

    def _spec(self, service: Service, create: Create, name: str, port: int | None) -> ContainerSpec:
        env = dict(service.environment or {})
        healthcheck = service.healthcheck
        if port is not None:
            env["PORT"] = str(port)
            if healthcheck:
                healthcheck = {**healthcheck, "test": [a.replace("$PORT", str(port))
                                                       for a in healthcheck["test"]]}
        command = [a.replace("$PORT", str(port)) for a in service.command] if (
            service.command and port is not None) else service.command
        return ContainerSpec(
            name=name, image=service.image, command=command, environment=env,
            labels={LABEL_MANAGED: "1", LABEL_INSTALLATION: self.config.installation_id,
                    LABEL_APPLICATION: self.app_name,
                    LABEL_SERVICE: service.name, LABEL_SLOT: str(create.slot),
                    LABEL_REVISION: str(create.revision)},
            cpus=service.cpus, memory=service.memory,
            network_mode="host" if port is not None else "none", healthcheck=healthcheck)

    def _pull(self, host: HostView, image: str) -> None:
        username = password = None
        registry, _, path = image.partition("/")
        if registry == self.config.registry_host and project_of(path.split(":")[0].split("@")[0]):
            username, password = pull_credentials.issue(self.config.secret_key, path.split("/")[0])
        engine = self.connect(host.endpoint)
        try:
            engine.pull(image, username, password)
        finally:
            engine.close()

    def _start(self, host: HostView, spec: ContainerSpec):
        """Runs after its pull: a failed pull fails this start with the pull's message."""
        engine = self.connect(host.endpoint)
        try:
            existing = engine.inspect(spec.name)
            state = existing or engine.create(spec)  # a retried pass finds its container
            if state.status != "running":
                engine.start(spec.name)
            return state
        finally:
            engine.close()

    def _bump_endpoints(self, service: Service) -> None:
        endpoints = sorted(endpoints_of(service, self.rows.values(), self.hosts))
        if endpoints != list(service.endpoints or []):
            service.endpoints = endpoints
            service.endpoints_version += 1  # wakes discovery's blocking queries


def endpoints_of(service: Service, rows, hosts: dict[int, HostView]) -> list[str]:
    """host:port of the running, healthy instances: what discovery hands consumers."""
    return [f"{hosts[r.host_id].address}:{r.host_port}" for r in rows
            if r.service is service and r.state == "running" and r.health in HEALTHY
            and r.host_port and r.host_id in hosts and hosts[r.host_id].alive]
