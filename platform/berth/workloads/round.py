"""A reconcile round, the shape of a Kubernetes controller in Berth's terms:

1. lease the applications (owned, renewed while the round runs), read what they want;
2. observe: list each live host once (this installation's containers), in parallel;
3. plan: one pure plan per application (scheduler.orchestration.plan), each isolated;
4. act: the engine calls, with no transaction open (berth.workloads.act);
5. record: one short transaction (berth.workloads.record); then sweep orphans.

A steady round makes no engine call beyond the lists, and writes nothing. A deploy's pass
is the same round over one application.
"""
from __future__ import annotations

import logging

from berth import audit, db
from berth.clock import utcnow
from berth.config import Config
from berth.engine import (
    LABEL_APPLICATION, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_PORT, LABEL_REVISION,
    LABEL_SERVICE, LABEL_SLOT,
)
from berth.hosts.placement import host_snapshots
from berth.hosts.services import Connect, default_connect
from berth.workloads import leases
from berth.workloads.act import Executor
from berth.workloads.desired import read_desired
from berth.workloads.observe import Seen, list_labelled, read_hosts
from berth.workloads.orphans import sweep_orphans
from berth.workloads.record import PassResult, record
from registry_sync.nearest import PullTable, read_pull_table
from scheduler.orchestration.capacity import Capacity
from scheduler.orchestration.fleet import eviction_pause
from scheduler.orchestration.plan import plan_application
from scheduler.orchestration.state import HostFacts, Launch, Round, SeenContainer

log = logging.getLogger(__name__)

__all__ = ["PassResult", "reconcile_application", "run_round"]


def reconcile_application(app_id: int, config: Config, *, connect: Connect = default_connect
                          ) -> PassResult | None:
    """One pass over one application; None when another pass holds it (try later)."""
    results, _summary = _round(config, connect, [app_id])
    return results.get(app_id)


def run_round(config: Config, *, connect: Connect = default_connect) -> dict:
    """Every application, every period: the level-triggered safety net."""
    results, summary = _round(config, connect, None)
    summary["converged"] = sum(r.converged for r in results.values())
    return summary


def _round(config: Config, connect: Connect, app_ids: list[int] | None
           ) -> tuple[dict[int, PassResult], dict]:
    now = utcnow()
    every = app_ids is None
    views = {view.id: view for view in read_hosts(config, now)}
    owner = leases.new_owner()
    held = leases.acquire(app_ids, owner, now, config.reconcile_lease_s)
    summary = {"leased": len(held)}
    try:
        with leases.Renewal(owner, config.reconcile_lease_s, config.reconcile_pass_limit_s) as renewal:
            desired = read_desired(held, everything=every)
            db.session.commit()  # nothing held while the engines answer
            labels = {LABEL_MANAGED: "1", LABEL_INSTALLATION: config.installation_id}
            if not every and len(desired.apps) == 1:
                labels[LABEL_APPLICATION] = desired.apps[0].name
            seen, unreadable = list_labelled(labels, list(views.values()), connect)
            facts = {v.id: HostFacts(v.id, v.name, v.address, v.alive and v.id not in unreadable,
                                     v.admin_state == "draining", v.port_range,
                                     v.admin_state == "maintenance", v.pool, v.idc)
                     for v in views.values()}
            round_ = Round(now.timestamp(), config.installation_id, facts,
                           config.dependency_timeout_s, eviction_pause(facts.values()))
            by_app = _by_application(seen)
            seen_ports: dict[int, set[int]] = {}
            for containers in by_app.values():
                for c in containers:
                    if c.port:
                        seen_ports.setdefault(c.host_id, set()).add(c.port)
            capacity = Capacity(lambda: _snapshots(now, config), facts, seen_ports)
            plans, broken = [], {}
            for app in desired.apps:
                try:
                    plans.append(plan_application(app, by_app.get(app.name, []), round_, capacity))
                except Exception as error:  # one application's bug stops no other
                    log.exception("planning application %s failed", app.name)
                    broken[app.id] = (app.name, f"{type(error).__name__}: {error}")
            pull_table = _pull_table(plans)
            outcomes = Executor(config, views, connect, pull_table).run(
                plans, stop=lambda: renewal.expired)
            if renewal.lost:
                log.warning("reconcile round lost its leases; recording nothing")
                return {}, {**summary, "lost_lease": True}
            results = record(desired, plans, outcomes, views)
            for app_id, (name, error) in broken.items():
                audit.record("application.error", f"reconcile of {name} failed: {error}"[:1000],
                             subject_type="application", subject=name)
                results[app_id] = PassResult(converged=False, problems={"*": error})
            db.session.commit()
            summary.update(paused=round_.evictions_paused, unreadable=len(unreadable),
                           actions=sum(len(p.actions) for p in plans), broken=len(broken))
    finally:
        leases.release(owner)
    if every:
        summary["orphans_removed"] = sweep_orphans(config, seen, views, connect=connect)
    return results, summary


def _pull_table(plans) -> PullTable:
    """Where the images about to be started can be pulled from (registry_sync.nearest): read
    only when something is to be launched, in a transaction closed before the engines."""
    paths = {action.spec.image.partition("/")[2] for plan in plans for action in plan.actions
             if isinstance(action, Launch)}
    if not paths:
        return PullTable()
    try:
        return read_pull_table(paths)
    finally:
        db.session.commit()


def _snapshots(now, config: Config):
    """The inventory's allocations, read only when something is to be placed; in a
    transaction of its own, closed before the engines are called."""
    try:
        return host_snapshots(now, config.probe_interval_s)
    finally:
        db.session.commit()


def _by_application(seen: list[Seen]) -> dict[str, list[SeenContainer]]:
    """The listed containers, grouped by application, their identity read from labels;
    a container whose labels do not parse is not one of ours to plan for."""
    grouped: dict[str, list[SeenContainer]] = {}
    for item in seen:
        labels = item.container.labels
        try:
            port = labels.get(LABEL_PORT)
            container = SeenContainer(
                item.host_id, item.container.id, item.container.name, labels[LABEL_APPLICATION],
                labels[LABEL_SERVICE], int(labels[LABEL_SLOT]), int(labels[LABEL_REVISION]),
                item.container.status, item.container.health, int(port) if port else None,
                item.container.exit_code)
        except (KeyError, ValueError):
            continue
        grouped.setdefault(container.application, []).append(container)
    return grouped
