"""One reconcile pass over an application: observe the engines, record what runs, then act
on the pure plan (scheduler.orchestration) until the real state meets the desired one.

Level-triggered and idempotent: containers carry labels and deterministic names, so a pass
that died half-way is finished by the next one, which finds (adopts) what was created.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from berth import audit, db
from berth.clock import utcnow
from berth.config import Config
from berth.engine import (
    LABEL_APPLICATION, LABEL_MANAGED, LABEL_REVISION, LABEL_SERVICE, LABEL_SLOT, ContainerSpec,
    EngineError,
)
from berth.hosts.liveness import is_alive
from berth.hosts.overview import stale_after
from berth.hosts.placement import host_snapshots, request_for
from berth.hosts.services import Connect, default_connect
from berth.models import Application, ContainerInstance, Host, Service
from berth.projects import pull_credentials
from berth.registry_auth import project_of
from berth.workloads.definitions import dependency_graph
from berth.workloads.observe import HostView, Seen, host_views, observe
from scheduler.orchestration import dependencies
from scheduler.orchestration.reconcile import (
    Create, DesiredService, ObservedContainer, Remove, Replace, reconcile,
)
from scheduler.orchestration.reconcile import container_name as planner_name
from scheduler.placement import Placer

LEASE = timedelta(seconds=120)
HEALTHY = ("healthy", None)
# Docker's container states as the planner knows them.
PLANNER_STATE = {"created": "created", "running": "running", "restarting": "running",
                 "paused": "running", "exited": "exited", "removing": "dead", "dead": "dead"}


@dataclass
class PassResult:
    converged: bool = True
    created: int = 0
    removed: int = 0
    waiting: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


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
        stale = stale_after(self.config.probe_interval_s)
        hosts = list(db.session.scalars(select(Host)))
        alive = {h.id: h.admin_state != "maintenance"
                 and is_alive(h.liveness, h.last_heartbeat_at, self.now, stale) for h in hosts}
        self.hosts = {v.id: v for v in host_views(hosts, alive)}
        db.session.commit()  # no transaction held while the engines answer
        seen, unreadable = observe(self.app_name, list(self.hosts.values()), self.connect)
        self.down = {h for h, ok in alive.items() if not ok} | unreadable
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
        status = {s.name: self._status(s) for s in app.services}
        for service in app.services:
            if status[service.name] != "pending":  # what was observed, before acting on it
                self._set_status(service, status[service.name], None)
        may_start = set(dependencies.ready_to_start(graph, status))
        creates: list[tuple[Service, Create]] = []
        self.after_creates: list[tuple[str, int]] = []
        for service in app.services:
            if status[service.name] == "pending" and service.name not in may_start:
                waiting = ", ".join(dependencies.blocked_by(graph, status, service.name))
                self._set_status(service, "waiting", f"waiting for {waiting}")
                self.result.waiting[service.name] = waiting
                self.result.converged = False
                continue
            service.waiting_since = None
            actions = reconcile([DesiredService(self._key(service), str(service.revision), service.replicas)],
                                self._observed(service), down_hosts=self.down,
                                draining_hosts=self.draining).actions
            for action in actions:
                if isinstance(action, Remove):
                    self._remove(action.name, action.host_id)
                elif isinstance(action, Replace):
                    if action.remove_first:  # it serves nothing and holds the name
                        self._remove(action.name, action.host_id)
                    else:  # its host is down or draining: new capacity first, elsewhere
                        self.after_creates.append((action.name, action.host_id))
                    creates.append((service, Create(service.name, action.revision, action.slot)))
                elif isinstance(action, Create):
                    creates.append((service, action))
            if actions:
                self.result.converged = False
        self._create_all(creates)
        for name, host_id in self.after_creates:
            self._remove(name, host_id)
        for service in app.services:
            final = self._status(service)
            if service.name not in self.result.waiting and service.name not in self.result.problems:
                self._set_status(service, final, None)  # waiting or failing keep their detail
            if final != "healthy":
                self.result.converged = False
            self._bump_endpoints(service)

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

    def _remove(self, name: str, host_id: int | None) -> None:
        """Remove container `name` from `host_id`; its row ends unless a twin lives on."""
        if host_id is not None and host_id in self.hosts and host_id not in self.down:
            engine = self.connect(self.hosts[host_id].endpoint)
            try:
                engine.remove(name)
            except EngineError:
                self.result.converged = False
                return  # try again next pass
            finally:
                engine.close()
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
        pulls: dict[tuple[int, str], object] = {}
        with ThreadPoolExecutor(max_workers=8) as pool:
            for service, _c, host, _p, _n, spec in jobs:
                key = (host.id, spec.image)
                if key not in pulls:
                    pulls[key] = pool.submit(self._pull, host, spec.image)
            started = [pool.submit(self._start, host, spec, pulls[(host.id, spec.image)])
                       for service, _c, host, _p, _n, spec in jobs]
        for (service, create, host, port, name, _spec), future in zip(jobs, started):
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
            labels={LABEL_MANAGED: "1", LABEL_APPLICATION: self.app_name,
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

    def _start(self, host: HostView, spec: ContainerSpec, pulled):
        pulled.result()  # a failed pull fails this start with the pull's message
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
