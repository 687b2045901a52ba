"""Releases as a pure state machine: rolling batches, canary with analysis, blue-green, in
stages across pools and IDCs, with automatic rollback.

A release moves a service's slots from the old revision to the new one. Each reconcile
round calls `advance` with what it saw (per slot: is the old container, the new one ready?)
and gets back the layout to run (which slots each revision holds), the revisions discovery
lists, and the progress to store. The same observation gives the same answer, so a round
that runs twice, or a worker killed mid-release, resumes where the stored progress says.

Rolling works like a Kubernetes Deployment within each batch: a slot starts its new
container beside the old (surge) while fewer than `max_surge` do, else it stops the old
first while fewer than `max_unavailable` slots serve nothing; a slot's old container goes
once its new one is ready. A batch must be ready within `deadline_s`, and no new container
may crash `max_failures` times; otherwise the release rolls back (or halts, with
auto_rollback off).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

from scheduler.orchestration.analysis import Verdict, analyse, Signal

ROLLING, CANARY, BLUE_GREEN = "rolling", "canary", "blue_green"
STRATEGIES = (ROLLING, CANARY, BLUE_GREEN)
# Phases. `between`: a stage is done, the next waits out the observation period (and an
# approval, if asked); `halted`: a gate failed with auto_rollback off.
P_ROLLING, P_CANARY, P_ANALYSIS, P_GREEN, P_SWITCHED = "rolling", "canary", "analysis", "green", "switched"
P_BETWEEN, P_HALTED, P_ROLLING_BACK = "between", "halted", "rolling_back"
P_DONE, P_ROLLED_BACK = "done", "rolled_back"
TERMINAL = frozenset({P_DONE, P_ROLLED_BACK})
# Release statuses as operators see them.
RUNNING, PAUSED, WAITING, SUCCEEDED, ROLLED_BACK, FAILED = (
    "running", "paused", "waiting", "succeeded", "rolled_back", "failed")
ACTIVE_STATUSES = (RUNNING, PAUSED, WAITING)
READY, STARTING, FAILING, ABSENT = "ready", "starting", "failing", "absent"
POOL_LABEL, IDC_LABEL = "berth.pool", "berth.idc"  # implicit host labels (placement)


class ReleaseError(ValueError):
    """A request that does not fit the release: a bad setting, or an action out of turn."""


# -- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """Where one stage releases: hosts in any of `pools` (all when empty) and in `idc` (any when None)."""

    pools: tuple[str, ...] = ()
    idc: str | None = None

    def holds(self, pool: str | None, idc: str | None) -> bool:
        return (not self.pools or pool in self.pools) and (self.idc is None or idc == self.idc)

    def constraints(self) -> tuple[str, ...]:
        """Label constraints that keep a new container inside the stage (see POOL_LABEL)."""
        out = []
        if self.pools:
            out.append(f"{POOL_LABEL} in ({','.join(self.pools)})")
        if self.idc is not None:
            out.append(f"{IDC_LABEL}=={self.idc}")
        return tuple(out)

    def describe(self) -> str:
        where = [("pools " + ", ".join(self.pools)) if self.pools else "every pool"]
        if self.idc:
            where.append(f"IDC {self.idc}")
        return " in ".join(where)


@dataclass(frozen=True)
class Settings:
    """How to release. Amounts are counts or percentages of the replicas ("25%")."""

    strategy: str = ROLLING
    batch: int | str = "25%"
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"
    pause_s: float = 0.0  # between batches
    deadline_s: float = 600.0  # a batch (or the canaries, or green) is ready within it
    max_failures: int = 2  # crashes of one new container that fail its batch
    auto_rollback: bool = True
    canary_count: int = 1
    analysis_s: float = 60.0
    auto_promote_s: float | None = None  # canary: promote after this long passing analysis
    switch: str = "auto"  # blue-green: switch when green is ready, or on promote ("manual")
    retire_after_s: float = 3600.0  # blue-green: blue goes after this unless switched back
    stages: tuple[Stage, ...] = ()
    observe_s: float = 0.0  # between stages
    approval: bool = False  # each later stage waits for a promote

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(_stage(s) for s in self.stages or ()))

    def check(self, replicas: int) -> None:
        if self.strategy not in STRATEGIES:
            raise ReleaseError(f"strategy must be one of {', '.join(STRATEGIES)}")
        for name in ("batch", "max_surge", "max_unavailable"):
            _amount(getattr(self, name), replicas, name)
        if self.batch_size(replicas) < 1:
            raise ReleaseError("batch must be at least 1 instance (a count or a percentage)")
        if self.surge(replicas) == 0 and self.unavailable(replicas) == 0:
            raise ReleaseError("max_surge and max_unavailable cannot both be 0: nothing could move")
        for name in ("pause_s", "deadline_s", "analysis_s", "observe_s", "retire_after_s"):
            if not 0 <= getattr(self, name) <= 7 * 86400:
                raise ReleaseError(f"{name} must be from 0 to 604800 seconds")
        if self.deadline_s <= 0:
            raise ReleaseError("deadline_s must be more than 0")
        if self.auto_promote_s is not None and not 0 <= self.auto_promote_s <= 7 * 86400:
            raise ReleaseError("auto_promote_s must be from 0 to 604800 seconds, or null")
        if self.max_failures < 1:
            raise ReleaseError("max_failures must be at least 1")
        if self.switch not in ("auto", "manual"):
            raise ReleaseError("switch must be auto or manual")
        if self.strategy == CANARY and not 1 <= self.canary_count < max(2, replicas):
            raise ReleaseError(f"canary_count must be from 1 to {max(1, replicas - 1)} "
                               f"(the other instances are the baseline)")
        if self.strategy == BLUE_GREEN and self.stages:
            raise ReleaseError("blue-green switches every instance at once: it takes no stages")
        if replicas < 1:
            raise ReleaseError("a service with 0 replicas has nothing to release; scale it first")

    def batch_size(self, replicas: int) -> int:
        return _amount(self.batch, replicas, "batch", up=True)

    def surge(self, replicas: int) -> int:
        return _amount(self.max_surge, replicas, "max_surge", up=True)

    def unavailable(self, replicas: int) -> int:
        return _amount(self.max_unavailable, replicas, "max_unavailable", up=False)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping) -> Settings:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ReleaseError(f"unknown release setting(s) {', '.join(unknown)}; "
                               f"known: {', '.join(sorted(known))}")
        values = dict(raw)
        try:
            return cls(**values)
        except TypeError as error:
            raise ReleaseError(f"bad release settings: {error}") from error


def _stage(raw) -> Stage:
    if isinstance(raw, Stage):
        return raw
    if not isinstance(raw, Mapping) or set(raw) - {"pools", "idc"}:
        raise ReleaseError('each stage is {"pools": [...], "idc": "..."} (either may be left out)')
    pools = raw.get("pools") or ()
    if isinstance(pools, str) or not all(isinstance(p, str) and p for p in pools):
        raise ReleaseError("a stage's pools is a list of pool names")
    idc = raw.get("idc")
    if idc is not None and (not isinstance(idc, str) or not idc):
        raise ReleaseError("a stage's idc is an IDC name")
    if not pools and idc is None:
        raise ReleaseError("a stage names pools, an idc, or both")
    return Stage(tuple(pools), idc)


def _amount(value, replicas: int, name: str, up: bool = True) -> int:
    """Kubernetes' rounding: surge and batches round up, unavailability down."""
    if isinstance(value, bool):
        raise ReleaseError(f"{name} must be a count or a percentage like \"25%\"")
    if isinstance(value, int):
        if value < 0:
            raise ReleaseError(f"{name} cannot be negative")
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            share = float(value[:-1])
        except ValueError:
            share = -1.0
        if not 0 <= share <= 100:
            raise ReleaseError(f"{name} {value!r}: a percentage from 0% to 100%")
        exact = replicas * share / 100
        return math.ceil(exact - 1e-9) if up else math.floor(exact + 1e-9)
    raise ReleaseError(f"{name} must be a count or a percentage like \"25%\", not {value!r}")


# -- what a round saw -----------------------------------------------------------------------


class SlotSeen(NamedTuple):
    """One slot this round: its old and new revisions' containers (ready, starting,
    failing, absent), the new one's crash restarts, and where the old one runs."""

    slot: int
    old: str = ABSENT
    new: str = ABSENT
    new_crashes: int = 0
    pool: str | None = None
    idc: str | None = None
    new_failure: str | None = None  # what the new container's failure looks like, if seen


@dataclass(frozen=True)
class Seen:
    now: float
    slots: Mapping[int, SlotSeen]
    signals: Mapping[tuple[int, int], Signal] = field(default_factory=dict)  # (revision, slot)

    def of(self, slot: int) -> SlotSeen:
        return self.slots.get(slot) or SlotSeen(slot)


# -- where a release stands -----------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Stored between rounds (as JSON): everything `advance` needs besides what it sees."""

    phase: str
    stages: tuple[tuple[int, ...], ...] = ()  # the slots of each stage, fixed at the start
    stage: int = 0
    moved: tuple[int, ...] = ()  # slots on the new revision, their old container gone
    batch: tuple[int, ...] = ()
    surging: tuple[int, ...] = ()  # batch slots that keep their old container until ready
    stopping: tuple[int, ...] = ()  # batch slots whose old container went first
    batches_done: int = 0
    batch_started: float | None = None
    next_batch_at: float | None = None
    stage_done_at: float | None = None
    approved: int = 0  # stages approved to start (with approval on)
    analysis_from: float | None = None
    baseline: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # "rev/slot" -> (lines, errors)
    switched_at: float | None = None
    switch_asked: bool = False  # blue-green, manual switch: promoted before green was ready
    paused: bool = False
    failed_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping) -> Progress:
        values = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for name in ("moved", "batch", "surging", "stopping"):
            values[name] = tuple(values.get(name) or ())
        values["stages"] = tuple(tuple(s) for s in values.get("stages") or ())
        values["baseline"] = {k: tuple(v) for k, v in (values.get("baseline") or {}).items()}
        return cls(**values)


class Step(NamedTuple):
    progress: Progress
    status: str
    detail: str
    layout: dict[int, frozenset[int]]  # revision -> the slots it runs
    traffic: frozenset[int]  # revisions discovery lists
    places: dict[int, tuple[str, ...]]  # new-revision slot -> constraints keeping it in its stage
    events: tuple[tuple[str, str], ...]  # (kind, message)
    analysis: dict | None = None
    finished: int | None = None  # the revision the service settles on, once terminal


@dataclass(frozen=True)
class Release:
    """A release's fixed facts: from which revision to which, over how many slots, how."""

    old: int
    new: int
    replicas: int
    settings: Settings


def start(release: Release, seen: Seen) -> Progress:
    """The progress of a release that has not taken a step: its stages' slots, fixed now
    from where the old containers run (a slot no stage holds goes in a last stage)."""
    settings, slots = release.settings, range(release.replicas)
    if release.old == release.new:
        raise ReleaseError(f"revision {release.new} is already the released one")
    settings.check(release.replicas)
    stages: list[list[int]] = [[] for _ in settings.stages] or [[]]
    rest: list[int] = []
    for slot in slots:
        at = seen.of(slot)
        index = next((i for i, s in enumerate(settings.stages) if s.holds(at.pool, at.idc)), None)
        (stages[index] if index is not None else rest if settings.stages else stages[0]).append(slot)
    if rest:
        stages.append(rest)
    phase = {ROLLING: P_ROLLING, CANARY: P_CANARY, BLUE_GREEN: P_GREEN}[settings.strategy]
    return Progress(phase, tuple(tuple(s) for s in stages), approved=1)


def advance(release: Release, progress: Progress, seen: Seen) -> Step:
    """The release as far as `seen` lets it go this round."""
    return _Advance(release, progress, seen).run()


# -- operator actions (pure: the progress after them) ----------------------------------------


def pause(progress: Progress) -> Progress:
    _active(progress, "pause")
    return replace(progress, paused=True)


def resume(progress: Progress, now: float) -> Progress:
    _active(progress, "resume")
    # A halted batch gets a fresh gate; a paused one its deadline back.
    phase = P_ROLLING if progress.phase == P_HALTED else progress.phase
    return replace(progress, paused=False, phase=phase, reason=None,
                   batch_started=now if progress.batch else progress.batch_started)


def promote(release: Release, progress: Progress, now: float) -> Progress:
    """Canary: roll the rest out. Blue-green: switch (manual), or retire blue once switched.
    Between stages: let the next stage start now, observation or approval notwithstanding."""
    _active(progress, "promote")
    if progress.phase in (P_CANARY, P_ANALYSIS):
        if progress.phase == P_CANARY:
            raise ReleaseError("the canaries are not ready yet; promote once they are analysed")
        return replace(progress, phase=P_ROLLING, analysis_from=None, next_batch_at=now)
    if progress.phase == P_GREEN:
        if release.settings.switch == "manual":
            return replace(progress, switch_asked=True)  # advance switches once green is ready
        raise ReleaseError("green is not ready yet: it switches by itself once it is")
    if progress.phase == P_SWITCHED:
        return replace(progress, phase=P_DONE, finished_at=now)
    if progress.phase == P_BETWEEN:
        return replace(progress, approved=progress.stage + 2, stage_done_at=0.0)
    raise ReleaseError(f"a release in phase {progress.phase} has nothing to promote")


def rollback(progress: Progress, now: float, reason: str) -> Progress:
    """Back to the old revision as fast as capacity allows: no batches; a blue-green
    switch-back is one step, as blue still runs."""
    _active(progress, "roll back")
    return replace(progress, phase=P_ROLLING_BACK, paused=False, failed_at=now, reason=reason)


def _active(progress: Progress, what: str) -> None:
    if progress.phase in TERMINAL:
        raise ReleaseError(f"cannot {what}: the release is over ({progress.phase})")


# -- the machine ----------------------------------------------------------------------------


class _Advance:
    def __init__(self, release: Release, progress: Progress, seen: Seen):
        self.r, self.p, self.seen = release, progress, seen
        self.s = release.settings
        self.events: list[tuple[str, str]] = []
        self.analysis: dict | None = None

    def run(self) -> Step:
        for _ in range(16):  # phases chain within a round (a batch done starts the next)
            before = self.p
            if self.p.paused or self.p.phase in TERMINAL or self.p.phase == P_HALTED:
                break
            {P_ROLLING: self._rolling, P_CANARY: self._rolling, P_ANALYSIS: self._analysis,
             P_BETWEEN: self._between, P_GREEN: self._green, P_SWITCHED: self._switched,
             P_ROLLING_BACK: self._rolling_back}[self.p.phase]()
            if self.p == before:
                break
        return self._step()

    # rolling, and the canaries (one batch of canary_count, then analysis)

    def _rolling(self) -> None:
        p, now = self.p, self.seen.now
        if p.batch:
            self._settle_batch()
            return
        left = [s for s in p.stages[p.stage] if s not in p.moved]
        if not left:
            self._stage_done()
            return
        if p.next_batch_at is not None and now < p.next_batch_at:
            return
        size = self.s.canary_count if p.phase == P_CANARY else self.s.batch_size(self.r.replicas)
        batch = tuple(left[:size])
        self.p = replace(p, batch=batch, surging=(), stopping=(), batch_started=now)
        what = "canaries" if p.phase == P_CANARY else f"batch {p.batches_done + 1}"
        self.events.append(("release.batch", f"{what}: slots {_slots(batch)} to revision {self.r.new}"
                            f"{self._where()}"))
        self._settle_batch()

    def _settle_batch(self) -> None:
        p, now = self.p, self.seen.now
        failing = self._failing(p.batch)
        if failing:
            self._gate_failed(failing)
            return
        ready = tuple(s for s in p.batch if self.seen.of(s).new == READY)
        moved = p.moved + tuple(s for s in ready if s not in p.moved)
        surging = tuple(s for s in p.surging if s not in ready)
        stopping = tuple(s for s in p.stopping if s not in ready)
        waiting = [s for s in p.batch if s not in moved and s not in surging and s not in stopping]
        unavailable = sum(1 for s in range(self.r.replicas) if not self._serving(s, moved, stopping))
        for slot in waiting:  # surge first: it never costs a serving instance
            if len(surging) < self.s.surge(self.r.replicas):
                surging += (slot,)
            elif unavailable < self.s.unavailable(self.r.replicas):
                stopping += (slot,)
                unavailable += self.seen.of(slot).old == READY
        self.p = replace(p, moved=moved, surging=surging, stopping=stopping)
        if all(s in moved for s in p.batch):
            self._batch_done()
        elif p.batch_started is not None and now - p.batch_started > self.s.deadline_s:
            behind = [s for s in p.batch if s not in moved]
            self._gate_failed(f"slots {_slots(behind)} not ready within the {self.s.deadline_s:g} s deadline")

    def _serving(self, slot: int, moved, stopping) -> bool:
        at = self.seen.of(slot)
        if slot in moved or slot in stopping:
            return at.new == READY
        return at.old == READY or at.new == READY

    def _batch_done(self) -> None:
        p, now = self.p, self.seen.now
        if p.phase == P_CANARY:
            self.events.append(("release.canary", f"{len(p.batch)} canaries of revision {self.r.new} "
                                f"ready; analysing for {self.s.analysis_s:g} s"))
            self.p = replace(p, phase=P_ANALYSIS, batch=(), surging=(), stopping=(),
                             analysis_from=now, baseline=self._counts())
            return
        self.events.append(("release.batch", f"batch {p.batches_done + 1} ready: "
                            f"{len(p.moved)}/{self.r.replicas} on revision {self.r.new}"))
        self.p = replace(p, batch=(), surging=(), stopping=(), batches_done=p.batches_done + 1,
                         next_batch_at=now + self.s.pause_s)

    def _stage_done(self) -> None:
        p, now = self.p, self.seen.now
        if p.stage + 1 >= len(p.stages):
            self.p = replace(p, phase=P_DONE, finished_at=now)
            self.events.append(("release.done", f"every instance on revision {self.r.new}"))
            return
        self.events.append(("release.stage", f"stage {p.stage + 1} of {len(p.stages)} done"
                            + (f"; observing for {self.s.observe_s:g} s" if self.s.observe_s else "")))
        self.p = replace(p, phase=P_BETWEEN, stage_done_at=now)

    def _between(self) -> None:
        p, now = self.p, self.seen.now
        failing = self._failing(p.moved)
        if failing:
            self._gate_failed(failing)
            return
        if now < (p.stage_done_at or 0) + self.s.observe_s:
            return
        if self.s.approval and p.approved < p.stage + 2:
            return
        self.p = replace(p, phase=P_ROLLING, stage=p.stage + 1, stage_done_at=None, next_batch_at=None)
        self.events.append(("release.stage", f"stage {p.stage + 2} of {len(p.stages)} started{self._where()}"))

    # canary analysis

    def _analysis(self) -> None:
        p, now = self.p, self.seen.now
        failing = self._failing(p.moved)
        if failing:
            self._gate_failed(failing)
            return
        verdict = self._verdict()
        self.analysis = verdict.as_dict()
        if now - (p.analysis_from or now) < self.s.analysis_s:
            return
        if verdict.outcome == "fail":
            self.events.append(("release.analysis", f"canary analysis failed: {verdict.detail}"))
            self.p = replace(p, phase=P_ROLLING_BACK, failed_at=now,
                             reason=f"canary analysis failed: {verdict.detail}")
        elif verdict.outcome == "pass" and self.s.auto_promote_s is not None \
                and now - (p.analysis_from or now) >= self.s.auto_promote_s:
            self.events.append(("release.promote", f"canaries passed analysis for "
                                f"{now - p.analysis_from:.0f} s: promoted by themselves"))
            self.p = replace(p, phase=P_ROLLING, analysis_from=None, next_batch_at=now)

    def _counts(self) -> dict[str, tuple[int, int]]:
        return {f"{rev}/{slot}": (sig.log_lines, sig.error_lines)
                for (rev, slot), sig in self.seen.signals.items()}

    def _verdict(self) -> Verdict:
        p, now = self.p, self.seen.now
        window = max(1.0, now - (p.analysis_from or now))

        def since(rev: int, slot: int) -> Signal | None:
            sig = self.seen.signals.get((rev, slot))
            if sig is None:
                return None
            lines, errors = p.baseline.get(f"{rev}/{slot}", (0, 0))
            if sig.log_lines < lines:  # a new container: counted from its start
                lines, errors = 0, 0
            return sig._replace(log_lines=sig.log_lines - lines, error_lines=sig.error_lines - errors)

        canaries = [since(self.r.new, s) for s in p.moved]
        base = [since(self.r.old, s) for s in range(self.r.replicas) if s not in p.moved]
        return analyse([c for c in canaries if c], [b for b in base if b], window)

    # blue-green

    def _green(self) -> None:
        p, now = self.p, self.seen.now
        if p.batch_started is None:
            self.p = p = replace(p, batch=tuple(range(self.r.replicas)), batch_started=now)
            self.events.append(("release.green", f"starting {self.r.replicas} instances of "
                                f"revision {self.r.new} beside the current set"))
        failing = self._failing(p.batch)
        if failing:
            self._gate_failed(failing)
            return
        if all(self.seen.of(s).new == READY for s in p.batch):
            if self.s.switch == "auto" or p.switch_asked:
                self.p = replace(p, phase=P_SWITCHED, switched_at=now, moved=p.batch)
                self.events.append(("release.switch", f"discovery switched to revision {self.r.new}; "
                                    f"revision {self.r.old} kept idle for a switch-back"))
        elif now - p.batch_started > self.s.deadline_s:
            self._gate_failed(f"green not ready within the {self.s.deadline_s:g} s deadline")

    def _switched(self) -> None:
        p, now = self.p, self.seen.now
        if now - (p.switched_at or now) >= self.s.retire_after_s:
            self.p = replace(p, phase=P_DONE, finished_at=now)
            self.events.append(("release.done", f"revision {self.r.old} retired after "
                                f"{self.s.retire_after_s:g} s"))

    # failure and rollback

    def _failing(self, slots: Sequence[int]) -> str | None:
        for slot in slots:
            at = self.seen.of(slot)
            crashes = at.new_crashes + (at.new == FAILING)
            if crashes >= self.s.max_failures:
                return (f"slot {slot} of revision {self.r.new} failed {crashes} time(s): "
                        f"{at.new_failure or 'it crashed or failed its healthcheck'}")
        return None

    def _gate_failed(self, why: str) -> None:
        now = self.seen.now
        if self.s.auto_rollback:
            self.events.append(("release.rollback", f"{why}: rolling back to revision {self.r.old}"))
            self.p = replace(self.p, phase=P_ROLLING_BACK, failed_at=now, reason=why)
        else:
            self.events.append(("release.halt", f"{why}: halted (roll back, or resume to retry the batch)"))
            self.p = replace(self.p, phase=P_HALTED, reason=why)

    def _rolling_back(self) -> None:
        p, now = self.p, self.seen.now
        if all(self.seen.of(s).old == READY for s in range(self.r.replicas)):
            self.p = replace(p, phase=P_ROLLED_BACK, finished_at=now)
            self.events.append(("release.rolled_back", f"every instance back on revision {self.r.old}"
                                f" in {now - (p.failed_at or now):.1f} s"))

    # the step

    def _where(self) -> str:
        stages = self.s.stages
        if not stages:
            return ""
        index = self.p.stage
        where = stages[index].describe() if index < len(stages) else "the pools no stage names"
        return f" (stage {index + 1}: {where})"

    def _places(self) -> dict[int, tuple[str, ...]]:
        out = {}
        for index, slots in enumerate(self.p.stages):
            if index < len(self.s.stages):
                for slot in slots:
                    out[slot] = self.s.stages[index].constraints()
        return out

    def _step(self) -> Step:
        p, r = self.p, self.r
        everything = frozenset(range(r.replicas))
        if p.phase == P_DONE:
            layout, traffic, status = {r.new: everything}, {r.new}, SUCCEEDED
        elif p.phase == P_ROLLED_BACK:
            layout, traffic = {r.old: everything}, {r.old}
            status = ROLLED_BACK if p.failed_at is not None else FAILED
        elif p.phase == P_ROLLING_BACK:
            # New containers that serve stay until their slot's old one is ready again.
            keep = frozenset(s for s in everything if self.seen.of(s).old != READY
                             and self.seen.of(s).new == READY)
            layout, traffic, status = {r.old: everything, r.new: keep}, {r.old, r.new}, RUNNING
        elif p.phase in (P_GREEN, P_SWITCHED):
            new = frozenset(p.batch) if p.batch_started is not None else frozenset()
            layout = {r.old: everything, r.new: new}
            traffic = {r.new} if p.phase == P_SWITCHED else {r.old}
            status = WAITING if p.phase == P_SWITCHED or (
                p.phase == P_GREEN and new and all(self.seen.of(s).new == READY for s in new)) else RUNNING
        else:
            new = frozenset(p.moved) | frozenset(p.surging) | frozenset(p.stopping)
            old = everything - frozenset(p.moved) - frozenset(p.stopping)
            layout, traffic = {r.old: old, r.new: new}, {r.old, r.new}
            status = RUNNING
            if p.phase == P_ANALYSIS and self.s.analysis_s <= self.seen.now - (p.analysis_from or 0):
                status = WAITING
            if p.phase == P_BETWEEN and self.s.approval and p.approved < p.stage + 2 \
                    and self.seen.now >= (p.stage_done_at or 0) + self.s.observe_s:
                status = WAITING
            if p.phase == P_HALTED:
                status = FAILED
        if p.paused and p.phase not in TERMINAL:
            status = PAUSED
        layout = {rev: slots for rev, slots in layout.items() if slots}
        if p.phase == P_ANALYSIS and self.analysis is None:
            self.analysis = self._verdict().as_dict()
        finished = r.new if p.phase == P_DONE else r.old if p.phase == P_ROLLED_BACK else None
        return Step(p, status, self._detail(status), layout, frozenset(traffic), self._places(),
                    tuple(self.events), self.analysis, finished)

    def _detail(self, status: str) -> str:
        p, r, now = self.p, self.r, self.seen.now
        on_new = sum(1 for s in range(r.replicas) if self.seen.of(s).new == READY)
        counts = f"{on_new}/{r.replicas} ready on revision {r.new}"
        if p.paused and p.phase not in TERMINAL:
            return f"paused by an operator; {counts}"
        if p.phase == P_DONE:
            return f"every instance on revision {r.new}"
        if p.phase == P_ROLLED_BACK:
            return f"rolled back to revision {r.old}" + (f": {p.reason}" if p.reason else "")
        if p.phase == P_ROLLING_BACK:
            back = sum(1 for s in range(r.replicas) if self.seen.of(s).old == READY)
            return f"rolling back ({back}/{r.replicas} ready on revision {r.old}): {p.reason}"
        if p.phase == P_HALTED:
            return f"halted: {p.reason}; roll back, or resume to retry the batch"
        if p.phase == P_ANALYSIS:
            verdict = self.analysis or {}
            left = self.s.analysis_s - (now - (p.analysis_from or now))
            if left > 0:
                return f"analysing canaries ({left:.0f} s left): {verdict.get('detail', '')}"
            if verdict.get("outcome") == "inconclusive":
                return f"analysis inconclusive: {verdict.get('detail')}; promote or roll back"
            return f"canaries pass the analysis ({verdict.get('detail')}): promote or roll back"
        if p.phase == P_BETWEEN:
            left = (p.stage_done_at or 0) + self.s.observe_s - now
            if left > 0:
                return f"stage {p.stage + 1} done; observing {left:.0f} s before stage {p.stage + 2}"
            return f"stage {p.stage + 1} done; stage {p.stage + 2} waits for approval (promote)"
        if p.phase == P_GREEN:
            if status == WAITING:
                return f"green ready ({counts}): promote to switch"
            return f"starting green: {counts}"
        if p.phase == P_SWITCHED:
            return (f"discovery lists revision {r.new}; revision {r.old} idle for a switch-back: "
                    f"promote to retire it, roll back to switch back")
        if p.batch:
            what = "canaries" if p.phase == P_CANARY else f"batch {p.batches_done + 1}"
            return f"{what} (slots {_slots(p.batch)}){self._where()}: {counts}"
        if p.next_batch_at is not None and now < p.next_batch_at:
            return f"pausing {p.next_batch_at - now:.0f} s before the next batch; {counts}"
        return counts


def _slots(slots: Sequence[int]) -> str:
    return ", ".join(str(s) for s in slots)
