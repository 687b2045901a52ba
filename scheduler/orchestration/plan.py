"""One application's reconcile plan: a pure function of what the database wants and recorded,
what the engines showed this round and the hosts, to the engine actions and the rows to
write. Every decision of a pass lives here (status, dependency hold, placement and ports,
the container spec, crash back-off, endpoints, teardown); berth.workloads.round only reads,
acts and records."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from scheduler.orchestration import dependencies, rollout
from scheduler.orchestration.analysis import Signal
from scheduler.orchestration.capacity import Capacity, Placed, container_spec
from scheduler.orchestration.containers import service_key
from scheduler.orchestration.reconcile import (
    HOST_DRAINING, Adopt, Create, DesiredService, ObservedContainer, Remove, Replace,
    Start, reconcile,
)
from scheduler.orchestration.state import (
    READY_HEALTH, AppPlan, AppState, Boot, Discard, InstanceState, Launch, Round, RowWrite,
    SeenContainer, ServiceState, ServiceWrite,
)

Layout = dict[int, frozenset[int]]  # revision -> the slots it runs
from scheduler.orchestration.teardown import plan_teardown

# Docker's container states as the slot planner knows them.
PLANNER_STATE = {"created": "created", "running": "running", "restarting": "running",
                 "paused": "running", "exited": "exited", "removing": "dead", "dead": "dead"}
# A slot whose container keeps dying is restarted after 2, 4, 8 ... s, at most 5 minutes
# apart (Kubernetes' CrashLoopBackOff: 10 s doubling to 5 min); the count resets once a
# container has run ready for a minute past its back-off.
BACKOFF_BASE_S, BACKOFF_CAP_S, BACKOFF_RESET_S = 2.0, 300.0, 60.0
CRASHES = ("exited", "dead", "unhealthy")
# At most this share of a service's slots is replaced in one round for a host that is down
# or draining, so a flapping host does not get everything restarted at once.
MAX_REPLACED_SHARE = 0.5


def default_layout(service: ServiceState) -> Layout:
    return {service.revision: frozenset(range(service.replicas))} if service.replicas else {}


def status_of(service: ServiceState, slots: Iterable[tuple[int, int, bool, str | None]],
              layout: Layout | None = None) -> str:
    """healthy, started or pending, from the (slot, revision, running, health) of the
    service's containers: those the layout wants count (its revision in 0..replicas-1,
    unless a release moves slots), and a slot is ready when one of them is."""
    layout = default_layout(service) if layout is None else layout
    wanted = frozenset().union(*layout.values()) if layout else frozenset()
    ready, running_any = set(), False
    for slot, revision, running, health in slots:
        if running and slot in layout.get(revision, ()):
            running_any = True
            if health in READY_HEALTH:
                ready.add(slot)
    if not wanted or len(ready) >= len(wanted):
        return "healthy"
    return "started" if running_any else "pending"


def backoff_s(restarts: int) -> float:
    """How long after its `restarts`-th crash restart a slot waits before the next one."""
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, restarts - 1))


def plan_application(app: AppState, seen: list[SeenContainer], round_: Round,
                     capacity: Capacity) -> AppPlan:
    view = _View(app, seen, round_)
    if app.deleting:
        return plan_teardown(app, view.current, view.rows_observed(), round_)
    return _Planner(app, view, round_, capacity).plan()


class _View:
    """The application's containers as this round knows them: what the engines listed,
    plus recorded rows on hosts that could not be seen (lost) or that no longer show them
    (missing). When evictions are paused, a down host's rows stand for what it runs."""

    def __init__(self, app: AppState, seen: list[SeenContainer], round_: Round):
        self.round = round_
        self.rows = {i.key: i for i in app.instances}
        hosts = round_.hosts
        self.current = [c for c in seen if c.host_id in hosts and hosts[c.host_id].alive]
        shown = {c.key for c in self.current}
        for row in app.instances:
            if row.state in ("removed", "missing", "lost") or row.key in shown:
                continue
            if round_.evictions_paused and not self.alive(row.host_id) and row.container_id:
                self.current.append(SeenContainer(
                    row.host_id, row.container_id, row.name, app.name, row.service, row.slot,
                    row.revision, row.state, row.health, row.host_port))

    def alive(self, host_id: int | None) -> bool:
        host = self.round.hosts.get(host_id)
        return host is not None and host.alive

    def rows_observed(self) -> list[RowWrite]:
        """Each recorded or seen slot's row as the engines now say it is."""
        writes = []
        by_key: dict[tuple, list[SeenContainer]] = defaultdict(list)
        for container in self.current:
            by_key[container.key].append(container)
        for key, containers in by_key.items():
            row = self.rows.get(key)
            keeper = min(containers, key=lambda c: (c.status != "running", c.health not in READY_HEALTH,
                                                    not (row and c.id == row.container_id), c.id))
            restarts = row.restarts if row else 0
            backoff = row.backoff_until if row else None
            if restarts and backoff is not None and keeper.status == "running" \
                    and keeper.health in READY_HEALTH and self.round.now >= backoff + BACKOFF_RESET_S:
                restarts, backoff = 0, None  # it has stayed up: the crash loop is over
            writes.append(RowWrite(keeper.service, keeper.slot, keeper.revision, keeper.name,
                                   keeper.host_id, keeper.id, keeper.port, keeper.status,
                                   keeper.health, restarts, backoff))
        for key, row in self.rows.items():
            if key in by_key or row.state == "removed":
                continue
            state = "missing" if self.alive(row.host_id) else "lost"
            writes.append(RowWrite(row.service, row.slot, row.revision, row.name, row.host_id,
                                   row.container_id, row.host_port, state, None,
                                   row.restarts, row.backoff_until))
        return writes


def changed(writes: list[RowWrite], rows: dict[tuple, InstanceState]) -> list[RowWrite]:
    """Only the writes that change something recorded."""
    out = []
    for write in writes:
        row = rows.get(write.key)
        if row is None or (row.name, row.host_id, row.container_id, row.host_port, row.state,
                           row.health, row.restarts, row.backoff_until) != (
                write.name, write.host_id, write.container_id, write.host_port, write.state,
                write.health, write.restarts, write.backoff_until):
            out.append(write)
    return out


class _Planner:
    def __init__(self, app: AppState, view: _View, round_: Round, capacity: Capacity):
        self.app, self.view, self.round, self.capacity = app, view, round_, capacity
        self.waves: tuple[list, list, list] = ([], [], [])  # free a name; start; retire
        self.rows = {w.key: w for w in view.rows_observed()}
        self.events: list[tuple[str, str, str]] = []
        self.waiting: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.problems: dict[str, str] = {}
        self.crash_loops: dict[str, str] = {}
        self.retiring: set[str] = set()  # container ids this plan removes
        self.steps: dict[str, tuple[int, rollout.Step]] = {}
        self.layouts: dict[str, Layout] = {}
        for service in app.services:
            if service.release is not None:
                try:
                    self.steps[service.name] = (service.release.id, self._release(service))
                except rollout.ReleaseError as error:  # e.g. the service was scaled to 0
                    self.problems[service.name] = f"release {service.release.id}: {error}"
        for service in app.services:
            step = self.steps.get(service.name)
            self.layouts[service.name] = step[1].layout if step else default_layout(service)

    def plan(self) -> AppPlan:
        app = self.app
        graph = {s.name: list(s.depends_on) for s in app.services}
        status = {s.name: self._observed_status(s) for s in app.services}
        may_start = set(dependencies.ready_to_start(graph, status))
        blocked = {s.name for s in app.services if status[s.name] == "pending"
                   and s.name not in may_start}
        holds = self._hold(graph, status, blocked)
        for service in app.services:
            if service.name not in blocked:
                self._converge(service)
        services = {}
        for service in app.services:
            held = holds.get(service.name)
            if held is not None:
                state, detail = held
                since = service.waiting_since if service.waiting_since is not None else self.round.now
            else:
                state, since = self._status(service, status[service.name]), None
                detail = self.problems.get(service.name) or self.crash_loops.get(service.name) \
                    or self._paused(service)
            step = self.steps.get(service.name)
            if held is None and detail is None and step is not None \
                    and step[1].status in rollout.ACTIVE_STATUSES:
                detail = f"releasing revision {service.release.release.new}: {step[1].detail}"
            services[service.name] = ServiceWrite(state, detail, since, self._endpoints(service),
                                                  derived=held is None and detail is None)
        actions = any(self.waves)
        converged = not actions and not holds and not self.problems and not self.crash_loops \
            and all(status[s.name] == "healthy" for s in app.services)
        return AppPlan(
            app.id, app.name, waves=tuple(tuple(w) for w in self.waves if w),
            rows=tuple(changed(list(self.rows.values()), self.view.rows)), services=services,
            events=tuple(self.events), waiting=self.waiting, failed=self.failed,
            # A release that waits for an operator (promote, resume) is settled for now.
            problems=self.problems, converged=converged and not any(
                step.status == rollout.RUNNING for _, step in self.steps.values()),
            layouts={name: layout for name, layout in self.layouts.items()
                     if name in self.steps}, releases=self.steps)

    # -- releases -------------------------------------------------------------------------

    def _release(self, service: ServiceState) -> rollout.Step:
        """The release's step this round, from its slots as the engines show them."""
        active = service.release
        old, new = active.release.old, active.release.new
        slots: dict[int, list] = defaultdict(lambda: [rollout.ABSENT, rollout.ABSENT, 0, None, None,
                                                      None])
        for c in self.view.current:
            if c.service != service.name or c.revision not in (old, new):
                continue
            entry = slots[c.slot]
            entry[0 if c.revision == old else 1] = _slot_state(c)
            if c.revision == new and entry[1] == rollout.FAILING:
                entry[5] = _failure_of(c)
            if c.revision == old and c.host_id in self.round.hosts:
                host = self.round.hosts[c.host_id]
                entry[3], entry[4] = host.pool, host.idc
        signals = {}
        for row in self.view.rows.values():
            if row.service == service.name and row.revision in (old, new):
                if row.revision == new:
                    slots[row.slot][2] = row.restarts
                if row.state == "running" and row.container_id:
                    signals[(row.revision, row.slot)] = Signal(
                        row.log_lines, row.error_lines, row.cpu_percent, row.memory_bytes, row.restarts)
        seen = rollout.Seen(self.round.now, {slot: rollout.SlotSeen(slot, *entry)
                                             for slot, entry in slots.items()}, signals)
        progress = active.progress or rollout.start(active.release, seen)
        return rollout.advance(active.release, progress, seen)

    # -- status and dependencies ----------------------------------------------------------

    def _observed_status(self, service: ServiceState) -> str:
        return status_of(service, [(c.slot, c.revision, c.status == "running", c.health)
                                   for c in self.view.current if c.service == service.name],
                         self.layouts[service.name])

    def _status(self, service: ServiceState, observed: str) -> str:
        if service.name in self.problems:
            return "unschedulable"
        if service.name in self.crash_loops:
            return "failing"
        return observed

    def _hold(self, graph, status: dict[str, str], blocked: set[str]) -> dict[str, tuple[str, str]]:
        """Services whose dependencies are not met wait, with a visible reason, up to the
        dependency deadline (timed from the later of when the wait began and the operator's
        last deploy or scale); then they, and whatever needs them, are failed. A failed
        service still starts if its dependencies come good: each round decides afresh."""
        timeout, now = self.round.dependency_timeout_s, self.round.now
        timed_out = set()
        for service in self.app.services:
            if service.name in blocked and service.waiting_since is not None:
                since = max(service.waiting_since, self.app.deploy_started_at or 0.0)
                if dependencies.deadline_exceeded(since, now, timeout):
                    timed_out.add(service.name)
        seen_as = {**status, **{name: dependencies.FAILED for name in timed_out}}
        doomed = set(dependencies.cannot_start(graph, seen_as))
        holds = {}
        for name in sorted(blocked):
            reasons = ", ".join(dependencies.blocked_by(graph, seen_as, name))
            if name in timed_out:
                holds[name] = ("failed", f"gave up after {timeout:g} s {reasons}")
            elif name in doomed:
                holds[name] = ("failed", f"cannot start: {reasons}")
            else:
                holds[name] = ("waiting", reasons)
                self.waiting[name] = reasons
                continue
            self.failed[name] = holds[name][1]
        return holds

    # -- slots ----------------------------------------------------------------------------

    def _converge(self, service: ServiceState) -> None:
        key = service_key(self.app.name, service.name)
        by_name = {(c.name, c.host_id): c for c in self.view.current if c.service == service.name}
        observed = [ObservedContainer(
            name=c.name, service=key, slot=c.slot, revision=str(c.revision), host_id=c.host_id,
            state=PLANNER_STATE.get(c.status, "dead"), health=c.health,
            known=c.key in self.view.rows and self.view.rows[c.key].state != "removed",
            container_id=c.id) for c in by_name.values()]
        # Paused evictions: a down host's recorded containers stand, so nothing is replaced.
        down = frozenset() if self.round.evictions_paused else self.round.down
        for row in self.view.rows.values():  # recorded, not shown: the planner's 'missing'
            now = self.rows.get(row.key)
            if row.service == service.name and now is not None and now.state in ("missing", "lost"):
                observed.append(ObservedContainer(
                    name=row.name, service=key, slot=row.slot, revision=str(row.revision),
                    host_id=row.host_id if row.host_id is not None else -1, state="missing"))
        limit = max(1, math.ceil(service.replicas * MAX_REPLACED_SHARE))
        layout = self.layouts[service.name]
        desired = [DesiredService(key, str(revision), len(slots), slots)
                   for revision, slots in sorted(layout.items())]
        if not desired:  # scaled to 0: every container of the service goes
            desired = [DesiredService(key, str(service.revision), 0)]
        plan = reconcile(desired, observed, down_hosts=down, draining_hosts=self.round.draining,
                         max_replacements=limit)
        for action in plan.actions:
            if isinstance(action, Adopt):
                self.events.append(("instance.adopt", f"adopted {action.name}", service.name))
            elif isinstance(action, Start):
                container = by_name[(action.name, action.host_id)]
                row = self.rows[container.key]
                health = _health_at_start(service.at(container.revision))
                self.waves[1].append(Boot(service.name, container.slot, container.revision,
                                          container.host_id, container.id, container.name,
                                          row._replace(state="running", health=health)))
            elif isinstance(action, Create):
                self._launch(service.at(int(action.revision)), int(action.slot), restarts=0,
                             backoff=None)
            elif isinstance(action, Replace):
                self._replace(service, action, by_name.get((action.name, action.host_id)))
            elif isinstance(action, Remove):
                self._remove(service, action, by_name.get((action.name, action.host_id)))

    def _launch(self, service: ServiceState, slot: int, *, restarts: int,
                backoff: float | None) -> bool:
        if service.name in self.problems:
            return False  # one explanation per service and round is enough
        step = self.steps.get(service.name)
        # A release's new container stays in its slot's stage (pools, IDC).
        places = step[1].places.get(slot, ()) if step and service.revision == \
            service.release.release.new else ()
        placed = self.capacity.place(self.app.name, service, places)
        if not isinstance(placed, Placed):
            self.problems[service.name] = placed
            return False
        spec = container_spec(self.round.installation, self.app.name, service, slot, placed.port)
        row = RowWrite(service.name, slot, service.revision, spec.name, placed.host_id, None,
                       placed.port, "running", _health_at_start(service), restarts, backoff,
                       fresh=True)
        self.waves[1].append(Launch(service.name, slot, service.revision, placed.host_id, spec, row))
        return True

    def _replace(self, service: ServiceState, action: Replace, old: SeenContainer | None) -> None:
        service = service.at(int(action.revision))
        slot = action.slot
        row = self.view.rows.get((service.name, slot, service.revision))
        restarts = row.restarts if row else 0
        backoff = row.backoff_until if row else None
        if action.reason in CRASHES:
            if backoff is not None and self.round.now < backoff:
                self.crash_loops[service.name] = (
                    f"crash-looping: slot {slot} is {action.reason} after {restarts} restart(s); "
                    f"next restart in {backoff - self.round.now:.0f} s")
                return
            restarts += 1
            backoff = self.round.now + backoff_s(restarts)
        retire = Discard(service.name, slot, service.revision, old.host_id, old.id, old.name,
                         action.reason) if old is not None and self.view.alive(old.host_id) else None
        if retire is not None:
            self.retiring.add(old.id)
        if action.reason == HOST_DRAINING:
            if self._launch(service, slot, restarts=restarts, backoff=backoff) and retire:
                self.waves[2].append(retire)  # new capacity first, then the old one goes
            return
        if retire is not None:
            self.waves[0].append(retire)  # it serves nothing and holds the name
        self._launch(service, slot, restarts=restarts, backoff=backoff)

    def _remove(self, service: ServiceState, action: Remove, old: SeenContainer | None) -> None:
        """Extra slots, old revisions and twins go; a row whose container is gone ends."""
        if old is None:  # recorded but missing: nothing to remove on any engine
            row = self.rows.get(_key_of(self.view.rows, action.name))
            if row is not None and row.state == "missing":
                self.rows[row.key] = row._replace(state="removed")
            return
        if not self.view.alive(old.host_id):
            return  # on a down host: it stays recorded (lost) until the host returns
        row = self.rows.get(old.key)
        ends_row = row is not None and row.container_id == old.id \
            and not action.reason.startswith("duplicate")
        self.retiring.add(old.id)
        self.waves[2].append(Discard(service.name, old.slot, old.revision, old.host_id, old.id,
                                     old.name, action.reason,
                                     row._replace(state="removed") if ends_row else None))

    def _paused(self, service: ServiceState) -> str | None:
        """The pause's reason, on the services it holds back (some container on a down host)."""
        if self.round.evictions_paused and any(
                c.service == service.name and not self.view.alive(c.host_id) for c in self.view.current):
            return self.round.evictions_paused
        return None

    def _endpoints(self, service: ServiceState) -> tuple[str, ...]:
        """host:port of the running, ready containers that stay, of the revisions that take
        traffic (a blue-green release lists one set at a time): what discovery hands out."""
        hosts = self.round.hosts
        step = self.steps.get(service.name)
        traffic = step[1].traffic if step else frozenset(self.layouts[service.name])
        return tuple(sorted(
            f"{hosts[c.host_id].address}:{c.port}" for c in self.view.current
            if c.service == service.name and c.status == "running" and c.health in READY_HEALTH
            and c.revision in traffic and c.port and c.id not in self.retiring
            and c.host_id in hosts))


def _health_at_start(service: ServiceState) -> str | None:
    """A container just started (launched, or booted from created): starting under a
    healthcheck, not None, which counts as "no healthcheck": ready."""
    return "starting" if service.healthcheck else None


def _slot_state(container: SeenContainer) -> str:
    if container.status in ("exited", "dead") or container.health == "unhealthy":
        return rollout.FAILING
    if container.status == "running" and container.health in READY_HEALTH:
        return rollout.READY
    return rollout.STARTING


def _failure_of(container: SeenContainer) -> str:
    if container.status in ("exited", "dead"):
        code = "" if container.exit_code is None else f" with code {container.exit_code}"
        return f"its container {'died' if container.status == 'dead' else 'exited' + code}"
    return "its healthcheck fails"


def _key_of(rows: dict[tuple, InstanceState], name: str) -> tuple | None:
    return next((key for key, row in rows.items() if row.name == name), None)
