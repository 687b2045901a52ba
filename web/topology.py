"""An application's dependency graph, laid out for an inline SVG drawn server-side.

`depths` and `layout` are pure (names and edges in, numbers out); `for_applications` reads
the applications' ServiceDependency rows in one query and hands them over.
"""
from __future__ import annotations

from sqlalchemy import select

from berth import db
from berth.models import Application, ServiceDependency

NODE_W, NODE_H = 150, 44
GAP_X, GAP_Y = 70, 18
MARGIN = 10
# Health colours (fill, text), Bootstrap's palette, by service status.
COLOURS = {"healthy": ("#198754", "#ffffff"), "failing": ("#dc3545", "#ffffff"),
           "failed": ("#dc3545", "#ffffff"), "unschedulable": ("#dc3545", "#ffffff"),
           "waiting": ("#ffc107", "#212529"), "stopping": ("#ffc107", "#212529"),
           "pending": ("#ffc107", "#212529")}
UNKNOWN_COLOUR = ("#6c757d", "#ffffff")


def depths(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each service's layer: 0 when it depends on nothing (in this application), else one
    more than the deepest of its dependencies. An edge (a, b) means a depends on b. A cycle
    (which definitions refuse, but rows may hold) is cut where it closes, so every name
    gets a finite depth. Edges naming services not in `names` are ignored."""
    known = set(names)
    needs: dict[str, list[str]] = {name: [] for name in names}
    for service, dependency in edges:
        if service in known and dependency in known and service != dependency:
            needs[service].append(dependency)
    found: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(name: str) -> int:
        if name in found:
            return found[name]
        visiting.add(name)
        below = [depth(d) for d in sorted(needs[name]) if d not in visiting]
        visiting.discard(name)
        found[name] = 1 + max(below) if below else 0
        return found[name]

    for name in sorted(names):
        depth(name)
    return found


def layout(names: list[str], edges: list[tuple[str, str]],
           statuses: dict[str, str] | None = None) -> dict:
    """Boxes in columns by depth (dependencies on the left, their dependents to the right),
    sorted by name within a column; arrows from each service to what it depends on."""
    statuses = statuses or {}
    layer_of = depths(names, edges)
    columns: dict[int, list[str]] = {}
    for name in sorted(names):
        columns.setdefault(layer_of[name], []).append(name)
    nodes, where = [], {}
    for layer, members in sorted(columns.items()):
        for row, name in enumerate(members):
            x = MARGIN + layer * (NODE_W + GAP_X)
            y = MARGIN + row * (NODE_H + GAP_Y)
            status = statuses.get(name, "unknown")
            fill, text = COLOURS.get(status, UNKNOWN_COLOUR)
            where[name] = (x, y)
            nodes.append({"name": name, "status": status, "layer": layer, "x": x, "y": y,
                          "w": NODE_W, "h": NODE_H, "fill": fill, "text": text,
                          "cx": x + NODE_W // 2, "ty": y + 18, "sy": y + 34})
    arrows = []
    for service, dependency in sorted(set(edges)):
        if service in where and dependency in where and service != dependency:
            (sx, sy), (dx, dy) = where[service], where[dependency]
            arrows.append({"from": service, "to": dependency,
                           "x1": sx, "y1": sy + NODE_H // 2,
                           "x2": dx + NODE_W, "y2": dy + NODE_H // 2})
    layers = max(columns) + 1 if columns else 0
    tallest = max((len(m) for m in columns.values()), default=0)
    return {"nodes": nodes, "edges": arrows,
            "width": 2 * MARGIN + max(0, layers * NODE_W + (layers - 1) * GAP_X),
            "height": 2 * MARGIN + max(0, tallest * NODE_H + (tallest - 1) * GAP_Y)}


def for_applications(applications: list[Application]) -> dict[int, dict]:
    """Each application's graph by its id, its dependencies read in one query for all."""
    names = {s.id: s.name for application in applications for s in application.services}
    rows = db.session.execute(
        select(ServiceDependency.service_id, ServiceDependency.depends_on_id)
        .where(ServiceDependency.service_id.in_(list(names)))).all() if names else []
    edges: dict[int, list[tuple[str, str]]] = {}
    owner = {s.id: application.id for application in applications for s in application.services}
    for service_id, dependency_id in rows:
        if owner.get(dependency_id) == owner[service_id]:  # dependencies stay in an application
            edges.setdefault(owner[service_id], []).append((names[service_id], names[dependency_id]))
    return {application.id: layout([s.name for s in application.services],
                                   edges.get(application.id, []),
                                   {s.name: s.status for s in application.services})
            for application in applications}
