"""The dependency planner: start order, stop order and readiness from services' `depends_on`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

# Conditions a dependency can be declared with, and what each one waits for.
STARTED, HEALTHY = "started", "healthy"
CONDITIONS = (STARTED, HEALTHY)
# Statuses of a service while a deployment runs (STARTED and HEALTHY double as statuses).
PENDING, STARTING, FAILED = "pending", "starting", "failed"
STATUSES = (PENDING, STARTING, STARTED, HEALTHY, FAILED)
# Which statuses satisfy each condition: a healthy service has certainly started.
_MEETS = {STARTED: frozenset({STARTED, HEALTHY}), HEALTHY: frozenset({HEALTHY})}

Graph = Mapping[str, Sequence[tuple[str, str]]]
"""Service name -> its dependencies as (dependency name, condition)."""


class DependencyError(ValueError):
    """The graph cannot be deployed: a cycle, an undefined dependency or an unknown condition."""


def validate(graph: Graph) -> None:
    """Raise DependencyError naming the problem(s); silent when the graph can be deployed."""
    plan_levels(graph)


def plan_levels(graph: Graph) -> list[list[str]]:
    """Deployment levels: level 0 needs nothing, each later level needs only earlier ones.

    Services of one level may start in parallel; each level is sorted by name.
    """
    return _levels(_normalise(graph))


def teardown_order(graph: Graph) -> list[list[str]]:
    """Stop levels, dependents first: a service stops once everything that needs it has stopped.

    Levelled on the reversed graph rather than by reversing plan_levels, so services nothing
    depends on stop in the first wave instead of waiting for unrelated, deeper chains.
    """
    deps = _normalise(graph)
    _levels(deps)  # refuse cycles and undefined names the same way as for a start
    dependents: dict[str, dict[str, str]] = {name: {} for name in deps}
    for name, needs in deps.items():
        for dep, condition in needs.items():
            dependents[dep][name] = condition
    return _levels(dependents)


def ready_to_start(graph: Graph, status: Mapping[str, str]) -> list[str]:
    """Pending services whose dependencies all meet their condition now, sorted by name.

    A service missing from `status` counts as pending.
    """
    deps = _normalise(graph)
    _levels(deps)  # a broken graph must fail before the first container starts, not halfway
    current = _statuses(deps, status)
    return sorted(
        name for name, needs in deps.items()
        if current[name] == PENDING and all(current[d] in _MEETS[c] for d, c in needs.items())
    )


def blocked_by(graph: Graph, status: Mapping[str, str], service: str) -> list[str]:
    """Why `service` cannot start yet, one phrase per unmet dependency ("waiting for api (healthy)")."""
    deps = _normalise(graph)
    if service not in deps:
        raise DependencyError(f"{service} is not defined")
    current = _statuses(deps, status)
    reasons = []
    for dep, condition in sorted(deps[service].items()):
        if current[dep] == FAILED:
            reasons.append(f"{dep} failed")
        elif current[dep] not in _MEETS[condition]:
            reasons.append(f"waiting for {dep} ({condition})")
    return reasons


def cannot_start(graph: Graph, status: Mapping[str, str]) -> list[str]:
    """Pending services that never will start because a dependency, directly or not, failed.

    Lets the caller fail them at once instead of letting each wait out its deadline.
    """
    deps = _normalise(graph)
    current = _statuses(deps, status)
    doomed: set[str] = set()
    for level in _levels(deps):  # dependencies come first, so doom propagates in one pass
        for name in level:
            if current[name] == PENDING and any(current[d] == FAILED or d in doomed for d in deps[name]):
                doomed.add(name)
    return sorted(doomed)


def deadline_exceeded(started_waiting_at: float, now: float, deadline_s: float) -> bool:
    """True once a service has waited strictly longer than `deadline_s` seconds."""
    return now - started_waiting_at > deadline_s


def _normalise(graph: Graph) -> dict[str, dict[str, str]]:
    """Dependencies as {service: {dependency: condition}}, after refusing undefined names and conditions.

    A dependency listed twice keeps its stricter condition (healthy implies started).
    """
    problems = []
    deps: dict[str, dict[str, str]] = {}
    for name in sorted(graph):
        needs: dict[str, str] = {}
        for dep, condition in graph[name]:
            if condition not in CONDITIONS:
                problems.append(f"{name} depends on {dep} with unknown condition {condition!r}"
                                f" (expected one of {', '.join(CONDITIONS)})")
            elif dep not in graph:
                problems.append(f"{name} depends on {dep}, which is not defined")
            elif needs.get(dep) != HEALTHY:
                needs[dep] = condition
        deps[name] = needs
    if problems:
        raise DependencyError("; ".join(problems))
    return deps


def _levels(deps: Mapping[str, Mapping[str, str]]) -> list[list[str]]:
    """Kahn's algorithm in rounds: each round is every service whose dependencies are all placed."""
    remaining = {name: set(needs) for name, needs in deps.items()}
    levels: list[list[str]] = []
    while remaining:
        level = sorted(name for name, needs in remaining.items() if not needs)
        if not level:
            raise DependencyError(f"dependency cycle: {' -> '.join(_find_cycle(remaining))}")
        for name in level:
            del remaining[name]
        for needs in remaining.values():
            needs.difference_update(level)
        levels.append(level)
    return levels


def _find_cycle(remaining: Mapping[str, set[str]]) -> list[str]:
    """One real cycle among services Kahn could not place, closed and rotated to its smallest name.

    Every such service still has an unplaced dependency, so walking from any of them (always
    taking the smallest dependency, for determinism) must eventually revisit a service.
    """
    path: list[str] = []
    seen: dict[str, int] = {}
    node = min(remaining)
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(remaining[node])
    cycle = path[seen[node]:]
    start = cycle.index(min(cycle))
    cycle = cycle[start:] + cycle[:start]
    return cycle + [cycle[0]]


def _statuses(deps: Mapping[str, object], status: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(f"{name}={value!r}" for name, value in status.items() if value not in STATUSES)
    if unknown:
        raise ValueError(f"unknown status {', '.join(unknown)} (expected one of {', '.join(STATUSES)})")
    return {name: status.get(name, PENDING) for name in deps}
