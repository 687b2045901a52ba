"""The reconciler's pure diff: desired services and observed containers in, an ordered Plan out."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from scheduler.orchestration.containers import slot_name

HostId = int | str
STATES = ("created", "running", "exited", "dead", "missing")
HEALTHS = (None, "starting", "healthy", "unhealthy")

# Replace reasons. Only these two leave an old container that may still be serving (or be
# unreachable), so only they create the new one before removing the old; see Replace.
HOST_DOWN, HOST_DRAINING = "host down", "host draining"
_CREATE_FIRST = frozenset({HOST_DOWN, HOST_DRAINING})


def container_name(service: str, revision: str, slot: int) -> str:
    """The one name a service's container for `slot` at `revision` has."""
    return slot_name(service, revision, slot)


@dataclass(frozen=True)
class DesiredService:
    """What should run: `replicas` containers of `revision`, in slots 0..replicas-1.

    A service may be listed once per revision (a rollout step such as {old: 6, new: 2});
    containers of any revision not listed are removed. replicas=0 removes the service's containers.
    """

    name: str
    revision: str
    replicas: int
    # The slots to run, when not 0..replicas-1: a release moves chosen slots between revisions.
    slots: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"service {self.name}: replicas must be >= 0, got {self.replicas}")

    @property
    def slot_set(self) -> frozenset[int]:
        return self.slots if self.slots is not None else frozenset(range(self.replicas))


@dataclass(frozen=True)
class ObservedContainer:
    """One container as docker and the database see it.

    `managed` is Berth's label on the container (unmanaged ones are invisible to the reconciler);
    `known` says the database has a row for it; state 'missing' means a row without a container.
    """

    name: str
    service: str
    slot: int
    revision: str
    host_id: HostId
    state: str
    health: str | None = None
    managed: bool = True
    known: bool = True
    container_id: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"container {self.name}: state {self.state!r} is not one of {STATES}")
        if self.health not in HEALTHS:
            raise ValueError(f"container {self.name}: health {self.health!r} is not one of {HEALTHS}")


@dataclass(frozen=True)
class Create:
    """Start a new container for `slot` (named container_name(service, revision, slot)); placement picks the host."""

    service: str
    revision: str
    slot: int


@dataclass(frozen=True)
class Remove:
    """Stop and delete container `name` on `host_id` (for state 'missing', just forget its row).

    The host is part of the identity because a cut-short replace can leave two containers of one
    name on different hosts.
    """

    name: str
    reason: str
    host_id: HostId


@dataclass(frozen=True)
class Replace:
    """Give `slot` a fresh container of `service` at `revision` in place of container `name`.

    The new container takes the same deterministic name, so the order matters: when the old one
    is dead, missing or unhealthy it serves nothing and is removed first, which frees the name on
    its host; when its host is down or draining it is created first, on another host (placement
    never picks either), so capacity returns before the old one goes.
    """

    name: str
    slot: int
    reason: str
    service: str
    revision: str
    host_id: HostId

    @property
    def remove_first(self) -> bool:
        return self.reason not in _CREATE_FIRST


@dataclass(frozen=True)
class Start:
    """Start container `name` on `host_id`: it is this slot's and was created but never
    started (a pass died between create and start)."""

    name: str
    host_id: HostId


@dataclass(frozen=True)
class Adopt:
    """Record container `name` on `host_id` in the database as it is; it is ours and fine, so never restart it."""

    name: str
    host_id: HostId


Action = Create | Remove | Replace | Start | Adopt


@dataclass(frozen=True)
class Plan:
    """Actions in the order to apply them; `deferred` names containers whose replacement waits for a later pass."""

    actions: tuple[Action, ...] = ()
    deferred: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.actions and not self.deferred


def reconcile(desired: Iterable[DesiredService], observed: Iterable[ObservedContainer],
              down_hosts: Collection[HostId] = frozenset(), draining_hosts: Collection[HostId] = frozenset(),
              max_replacements: int | None = None) -> Plan:
    """The actions that make the observed containers of the desired services match them.

    Only services named in `desired` are in scope, so a pass over some services can never delete
    the others. Order: adoptions, then creates and replacements by (service, revision, slot),
    then removals by name, so new capacity is asked for before old capacity is given up.
    At most `max_replacements` Replace actions are issued per pass (lowest service, slot first),
    so one flapping host cannot make every container restart at once.
    """
    if max_replacements is not None and max_replacements < 0:
        raise ValueError(f"max_replacements must be >= 0, got {max_replacements}")
    wanted: dict[tuple[str, str], frozenset[int]] = {}
    for service in desired:
        key = (service.name, service.revision)
        if key in wanted:
            raise ValueError(f"service {service.name} revision {service.revision} is desired twice")
        wanted[key] = service.slot_set
    in_scope = {name for name, _ in wanted}

    adopts: list[Adopt] = []
    removes: list[Remove] = []
    by_slot: dict[tuple[str, str, int], list[ObservedContainer]] = defaultdict(list)
    for container in observed:
        if not container.managed or container.service not in in_scope:
            continue  # not ours to touch: unmanaged, or its service is not part of this pass
        slots = wanted.get((container.service, container.revision))
        if slots is None:
            removes.append(Remove(container.name, f"old revision {container.revision}", container.host_id))
        elif container.slot not in slots:
            removes.append(Remove(container.name, f"extra: slot {container.slot} of {len(slots)} replicas",
                                   container.host_id))
        else:
            by_slot[(container.service, container.revision, container.slot)].append(container)

    def fault(container: ObservedContainer) -> str | None:
        if container.host_id in down_hosts:
            return HOST_DOWN  # first: everything else docker said about it is stale
        if container.state in ("exited", "dead", "missing"):
            return container.state
        if container.health == "unhealthy":
            return "unhealthy"
        if container.host_id in draining_hosts:
            return HOST_DRAINING  # last: a real failure is the better reason to give
        return None  # created, running, or still starting: leave it be

    steps: list[tuple[tuple[str, str, int], Create | Replace | Start]] = []
    for (service, revision), slots in wanted.items():
        for slot in sorted(slots):
            key = (service, revision, slot)
            candidates = by_slot.get(key)
            if not candidates:
                steps.append((key, Create(service, revision, slot)))
                continue
            name = container_name(service, revision, slot)
            # Two containers in one slot (e.g. a create-first replace cut short): keep the best.
            candidates.sort(key=lambda c: (c.name != name, fault(c) is not None, c.health != "healthy",
                                           not c.known, str(c.host_id), c.name))
            keeper, *duplicates = candidates
            removes.extend(Remove(c.name, f"duplicate in slot {slot}", c.host_id) for c in duplicates)
            reason = fault(keeper)
            if reason is None and keeper.name != name:
                reason = f"name is not {name}"
            if reason is not None:
                steps.append((key, Replace(keeper.name, slot, reason, service, revision, keeper.host_id)))
                continue
            if not keeper.known:
                adopts.append(Adopt(keeper.name, keeper.host_id))
            if keeper.state == "created":
                steps.append((key, Start(keeper.name, keeper.host_id)))

    steps.sort(key=lambda step: step[0])
    actions: list[Action] = sorted(adopts, key=lambda a: (a.name, str(a.host_id)))
    deferred: list[str] = []
    replacements = 0
    for _, step in steps:
        if isinstance(step, Replace):
            if max_replacements is not None and replacements >= max_replacements:
                deferred.append(step.name)
                continue
            replacements += 1
        actions.append(step)
    actions.extend(sorted(removes, key=lambda r: (r.name, str(r.host_id))))
    return Plan(tuple(actions), tuple(deferred))
