"""The release planner: rolling, canary and blue-green rollouts as a pure state machine."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scheduler.orchestration.reconcile import DesiredService

ROLLING, CANARY, BLUE_GREEN = "rolling", "canary", "blue_green"
# Phases a rollout moves through; the last three are terminal.
PHASE_ROLLING, PHASE_CANARY, PHASE_GREEN, PHASE_SWITCHED = "rolling", "canary", "green", "switched"
PHASE_DONE, PHASE_ROLLED_BACK, PHASE_FAILED = "done", "rolled_back", "failed"
TERMINAL = frozenset({PHASE_DONE, PHASE_ROLLED_BACK, PHASE_FAILED})
# Step statuses: what the caller should do next.
WAITING, WAITING_FOR_PROMOTION = "waiting", "waiting_for_promotion"
DONE, ROLLED_BACK, FAILED = PHASE_DONE, PHASE_ROLLED_BACK, PHASE_FAILED


class RolloutError(ValueError):
    """A transition that does not apply to the rollout's current phase."""


@dataclass(frozen=True)
class Strategy:
    """How to release. `failure_limit` new-instance health failures abandon the rollout."""

    kind: str
    batch_ratio: float = 0.25  # rolling, and canary once promoted
    canary_count: int = 0
    failure_limit: int = 3

    def __post_init__(self) -> None:
        if self.kind not in (ROLLING, CANARY, BLUE_GREEN):
            raise ValueError(f"unknown strategy {self.kind!r}")
        if not 0 < self.batch_ratio <= 1:
            raise ValueError(f"batch_ratio must be in (0, 1], got {self.batch_ratio}")
        if self.kind == CANARY and self.canary_count < 1:
            raise ValueError(f"canary count must be >= 1, got {self.canary_count}")
        if self.failure_limit < 1:
            raise ValueError(f"failure_limit must be >= 1, got {self.failure_limit}")


def rolling(batch_ratio: float, failure_limit: int = 3) -> Strategy:
    """Replace old instances in batches of ceil(replicas × batch_ratio), each healthy before the next."""
    return Strategy(ROLLING, batch_ratio=batch_ratio, failure_limit=failure_limit)


def canary(count: int, batch_ratio: float = 0.25, failure_limit: int = 3) -> Strategy:
    """Run `count` new instances beside the old ones until promoted (then roll) or rolled back."""
    return Strategy(CANARY, batch_ratio=batch_ratio, canary_count=count, failure_limit=failure_limit)


def blue_green(failure_limit: int = 3) -> Strategy:
    """Start a full new set beside the old, switch traffic when it is healthy, drop the old on confirm."""
    return Strategy(BLUE_GREEN, failure_limit=failure_limit)


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout stands; persist it between steps.

    `new_target` is how many new-revision instances the current phase wants; the healthy counts
    are those last observed, kept so promote() can check the canaries without another look.
    """

    strategy: Strategy
    old_revision: str
    new_revision: str
    replicas: int
    phase: str
    new_target: int = 0
    healthy_new: int = 0
    healthy_old: int = 0

    @property
    def batch_size(self) -> int:
        return max(1, math.ceil(self.replicas * self.strategy.batch_ratio))


@dataclass(frozen=True)
class Observed:
    """Instance counts the I/O layer saw for this rollout's two revisions.

    `new_failures` counts health failures of new-revision instances since the rollout began
    (an instance turning unhealthy or exiting), so a crash-looping release is caught.
    """

    healthy_new: int
    healthy_old: int
    new_failures: int = 0


@dataclass(frozen=True)
class Step:
    """What the desired state should be now, and the state to persist for the next step.

    `desired` maps revision -> replicas (revisions at zero are left out, so the reconciler
    removes them); `traffic` lists the revisions service discovery should route to.
    """

    state: RolloutState
    status: str
    desired: dict[str, int]
    traffic: tuple[str, ...]
    reason: str


def start(strategy: Strategy, old_revision: str, new_revision: str, replicas: int) -> RolloutState:
    """A rollout from `old_revision` to `new_revision` that has not taken its first step."""
    if old_revision == new_revision:
        raise ValueError(f"new revision {new_revision} is already the old one")
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if strategy.kind == CANARY and strategy.canary_count > replicas:
        raise ValueError(f"{strategy.canary_count} canaries exceed {replicas} replicas")
    phase = {ROLLING: PHASE_ROLLING, CANARY: PHASE_CANARY, BLUE_GREEN: PHASE_GREEN}[strategy.kind]
    return RolloutState(strategy, old_revision, new_revision, replicas, phase)


def next_step(state: RolloutState, observed: Observed) -> Step:
    """Advance the rollout as far as `observed` allows and say what should run now.

    Calling it again with the same observation returns the same step, so it is safe to run
    on every reconcile tick. Too many new-instance failures roll back automatically in every
    strategy: before the switch nothing new serves, and after a blue-green switch blue is
    still running, so going back is instant.
    """
    state = replace(state, healthy_new=observed.healthy_new, healthy_old=observed.healthy_old)
    if state.phase in TERMINAL:
        return _settled(state)
    if observed.new_failures >= state.strategy.failure_limit:
        return _settled(replace(state, phase=PHASE_FAILED, new_target=0),
                        f"{observed.new_failures} health failures of {state.new_revision}"
                        f" (limit {state.strategy.failure_limit}): rolled back to {state.old_revision}")
    if state.phase == PHASE_ROLLING:
        return _rolling(state)
    if state.phase == PHASE_CANARY:
        state = replace(state, new_target=state.strategy.canary_count)
        count = state.strategy.canary_count
        both = (state.old_revision, state.new_revision)
        if state.healthy_new >= count:
            return _step(state, WAITING_FOR_PROMOTION, state.replicas, count, both,
                         f"{count} canaries of {state.new_revision} healthy: promote or roll back")
        return _step(state, WAITING, state.replicas, count, both,
                     f"waiting for canaries: {state.healthy_new}/{count} healthy")
    # Blue-green: traffic stays on blue until every green instance is healthy, then flips whole.
    state = replace(state, new_target=state.replicas)
    if state.phase == PHASE_GREEN and state.healthy_new >= state.replicas:
        state = replace(state, phase=PHASE_SWITCHED)
    if state.phase == PHASE_SWITCHED:
        return _step(state, WAITING_FOR_PROMOTION, state.replicas, state.replicas, (state.new_revision,),
                     f"traffic on {state.new_revision}; {state.old_revision} kept until promoted")
    return _step(state, WAITING, state.replicas, state.replicas, (state.old_revision,),
                 f"waiting for green: {state.healthy_new}/{state.replicas} healthy")


def promote(state: RolloutState) -> RolloutState:
    """Canary: go on to a rolling replacement of the rest. Blue-green: confirm, so blue is removed."""
    if state.phase == PHASE_CANARY:
        count = state.strategy.canary_count
        if state.healthy_new < count:
            raise RolloutError(f"cannot promote: canaries not healthy yet ({state.healthy_new}/{count})")
        # The canaries stand in for `count` old instances from here, so rolling starts with them
        # as its first, already healthy batch.
        return replace(state, phase=PHASE_ROLLING, new_target=count)
    if state.phase == PHASE_SWITCHED:
        return replace(state, phase=PHASE_DONE)
    raise RolloutError(f"cannot promote a {state.strategy.kind} rollout in phase {state.phase}")


def rollback(state: RolloutState) -> RolloutState:
    """Go back to the old revision: remove new instances and route traffic to the old at once."""
    if state.phase in TERMINAL:
        raise RolloutError(f"cannot roll back a rollout that is already {state.phase}")
    return replace(state, phase=PHASE_ROLLED_BACK, new_target=0)


def as_desired(service: str, step: Step) -> list[DesiredService]:
    """The step's desired counts as the reconciler's input, one entry per revision."""
    return [DesiredService(service, revision, count) for revision, count in sorted(step.desired.items())]


def _rolling(state: RolloutState) -> Step:
    # Batches replace rather than surge: old drops as new rises, so the service never needs more
    # than its replicas' worth of room, and at most one batch is out of service at a time.
    if state.healthy_new >= state.new_target:
        if state.new_target >= state.replicas:
            return _settled(replace(state, phase=PHASE_DONE))
        state = replace(state, new_target=min(state.replicas, state.new_target + state.batch_size))
    both = (state.old_revision, state.new_revision)
    return _step(state, WAITING, state.replicas - state.new_target, state.new_target, both,
                 f"rolling: waiting for {state.new_target}/{state.replicas} {state.new_revision}"
                 f" instances to be healthy ({state.healthy_new} are)")


def _settled(state: RolloutState, reason: str | None = None) -> Step:
    if state.phase == PHASE_DONE:
        return _step(state, DONE, 0, state.replicas, (state.new_revision,),
                     reason or f"{state.new_revision} fully rolled out")
    if state.phase == PHASE_ROLLED_BACK:
        return _step(state, ROLLED_BACK, state.replicas, 0, (state.old_revision,),
                     reason or f"rolled back to {state.old_revision}")
    return _step(state, FAILED, state.replicas, 0, (state.old_revision,),
                 reason or f"{state.new_revision} failed; rolled back to {state.old_revision}")


def _step(state: RolloutState, status: str, old: int, new: int, traffic: tuple[str, ...], reason: str) -> Step:
    desired = {revision: count for revision, count in ((state.old_revision, old), (state.new_revision, new)) if count}
    return Step(state, status, desired, traffic, reason)
