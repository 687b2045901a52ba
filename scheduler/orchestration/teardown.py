"""Tearing an application down, dependents first: a level of the reversed dependency graph
goes only once every level before it is gone. Containers on a down host stay recorded (it
may come back, or be removed from the inventory), so the application row goes only when
nothing of it is left anywhere. Pure."""
from __future__ import annotations


from scheduler.orchestration import dependencies
from scheduler.orchestration.state import (
    AppPlan, AppState, Discard, Round, RowWrite, SeenContainer, ServiceWrite,
)


def plan_teardown(app: AppState, current: list[SeenContainer], observed_rows: list[RowWrite],
                  round_: Round) -> AppPlan:
    graph = {s.name: list(s.depends_on) for s in app.services}
    hosts = round_.hosts
    rows = {row.key: row for row in observed_rows}
    writes = {key: row._replace(state="removed") for key, row in rows.items()
              if row.state == "missing"}  # nothing left to remove on any engine
    waves, services, remaining = [], {}, []
    for level in dependencies.teardown_order(graph):
        if remaining:
            for name in level:
                services[name] = ServiceWrite(
                    "stopping", f"waiting for {', '.join(remaining)} to stop", None, ())
            continue
        wave = []
        for name in level:
            reachable = [c for c in current if c.service == name and hosts[c.host_id].alive]
            stranded = sorted({hosts[r.host_id].name for r in observed_rows
                               if r.service == name and r.host_id in hosts
                               and (r.state == "lost" or not hosts[r.host_id].alive)})
            left = sum(1 for r in observed_rows if r.service == name and r.state != "missing"
                       and (r.host_id not in hosts or not hosts[r.host_id].alive))
            for container in reachable:
                row = rows.get(container.key)
                ends = row is not None and row.container_id == container.id
                wave.append(Discard(name, container.slot, container.revision, container.host_id,
                                    container.id, container.name, "teardown",
                                    row._replace(state="removed") if ends else None))
            if left:
                services[name] = ServiceWrite("stopping", f"{left} container(s) left" + (
                    f" on down host(s) {', '.join(stranded)}" if stranded else ""), None, ())
                remaining.append(name)
            else:
                services[name] = ServiceWrite("stopped", None, None, ())
        if wave:
            waves.append(tuple(wave))
    return AppPlan(app.id, app.name, waves=tuple(waves), rows=tuple(writes.values()),
                   services=services, strict=True, delete_when_done=not remaining,
                   converged=False)
