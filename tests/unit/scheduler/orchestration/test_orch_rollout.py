"""The release machine, step by step against simulated slots (pure: no engine, no clock)."""
import pytest

from scheduler.orchestration import rollout as r
from scheduler.orchestration.analysis import Signal, analyse


def _release(replicas=4, **settings):
    return r.Release(old=1, new=2, replicas=replicas, settings=r.Settings(**settings))


class World:
    """Slots whose containers become ready one round after the layout asks for them."""

    def __init__(self, release, locations=None, crash_new=False):
        self.release, self.now = release, 1000.0
        self.running = {(release.old, s): "ready" for s in range(release.replicas)}
        self.crashes = {}
        self.locations = locations or {}
        self.crash_new = crash_new
        self.min_serving = release.replicas
        self.progress = r.start(release, self.seen())
        self.steps = []

    def seen(self, signals=None):
        slots = {}
        for s in range(self.release.replicas):
            pool, idc = self.locations.get(s, (None, None))
            slots[s] = r.SlotSeen(s, self.running.get((self.release.old, s), r.ABSENT),
                                  self.running.get((self.release.new, s), r.ABSENT),
                                  self.crashes.get(s, 0), pool, idc)
        return r.Seen(self.now, slots, signals or {})

    def round(self, dt=1.0, signals=None):
        step = r.advance(self.release, self.progress, self.seen(signals))
        self.progress = step.progress
        self.steps.append(step)
        # the engines converge to the layout: what is asked starts (ready next round), the rest goes
        wanted = {(rev, s) for rev, slots in step.layout.items() for s in slots}
        for key in list(self.running):
            if key not in wanted:
                del self.running[key]
        for key in wanted:
            if key not in self.running:
                self.running[key] = "starting"
            elif self.running[key] == "starting":
                if key[0] == self.release.new and self.crash_new:
                    self.crashes[key[1]] = self.crashes.get(key[1], 0) + 1
                else:
                    self.running[key] = "ready"
        serving = sum(1 for s in range(self.release.replicas)
                      if any(self.running.get((rev, s)) == "ready" for rev in step.traffic))
        self.min_serving = min(self.min_serving, serving)
        self.now += dt
        return step

    def until(self, status, rounds=100, **kw):
        for _ in range(rounds):
            step = self.round(**kw)
            if step.status == status:
                return step
        raise AssertionError(f"never {status}: {self.steps[-1].detail}")


def test_rolling_moves_every_slot_and_never_drops_below_replicas_minus_unavailable():
    world = World(_release(12, batch="25%"))
    step = world.until(r.SUCCEEDED)
    assert step.layout == {2: frozenset(range(12))} and step.finished == 2
    assert world.min_serving >= 12 - r.Settings().unavailable(12)
    assert sum(1 for s in world.steps for kind, _ in s.events if kind == "release.batch") == 8


def test_stop_first_only_when_no_surge_and_respects_max_unavailable():
    world = World(_release(4, batch=2, max_surge=0, max_unavailable=1))
    world.until(r.SUCCEEDED)
    assert world.min_serving == 3


def test_both_budgets_zero_is_refused():
    with pytest.raises(r.ReleaseError, match="cannot both be 0"):
        r.start(_release(4, max_surge=0, max_unavailable=0), r.Seen(0, {}))
    with pytest.raises(r.ReleaseError, match="at least 1"):
        r.start(_release(4, batch=0), r.Seen(0, {}))
    with pytest.raises(r.ReleaseError, match="percentage"):
        r.start(_release(4, batch="x%"), r.Seen(0, {}))


def test_a_crashing_revision_rolls_back_by_itself_and_says_why():
    world = World(_release(4), crash_new=True)
    step = world.until(r.ROLLED_BACK)
    assert step.layout == {1: frozenset(range(4))} and step.finished == 1
    assert "failed 2 time(s)" in step.progress.reason and "rolled back" in step.detail
    assert world.min_serving >= 3


def test_a_batch_past_its_deadline_rolls_back_or_halts():
    release = _release(4, deadline_s=5)
    world = World(release)
    world.round()  # batch 1 asked
    world.running = {k: ("starting" if k[0] == 2 else v) for k, v in world.running.items()}
    world.progress = r.advance(release, world.progress, world.seen()).progress
    world.now += 10
    step = r.advance(release, world.progress, world.seen())
    # the old containers still serve (surge), so the rollback is over at once
    assert step.status == r.ROLLED_BACK and "deadline" in step.progress.reason
    halted = r.advance(_release(4, deadline_s=5, auto_rollback=False), world.progress, world.seen())
    assert halted.progress.phase == r.P_HALTED and halted.status == r.FAILED


def test_stages_follow_pools_and_idcs_and_wait_out_the_observation():
    stages = ({"pools": ["non-core"]}, {"pools": ["core"], "idc": "a"}, {"pools": ["core"], "idc": "b"})
    locations = {0: ("non-core", "a"), 1: ("core", "a"), 2: ("core", "b"), 3: ("core", "b")}
    release = _release(4, batch="100%", stages=[r._stage(s) for s in stages], observe_s=30)
    world = World(release, locations)
    assert world.progress.stages == ((0,), (1,), (2, 3))
    step = world.round()
    assert step.places[0] == ("berth.pool in (non-core)",) and step.places[1][1] == "berth.idc==a"
    while world.progress.phase != r.P_BETWEEN:
        world.round()
    done_at = world.progress.stage_done_at
    while world.progress.stage == 0:
        world.round()
    assert world.now - 1 >= done_at + 30  # stage 2 began only after the observation period
    assert world.until(r.SUCCEEDED).layout == {2: frozenset(range(4))}


def test_approval_between_stages_waits_for_promote():
    release = _release(2, batch="100%", stages=[r._stage({"idc": "a"})], approval=True)
    world = World(release, {0: ("p", "a"), 1: ("p", "b")})
    step = world.until(r.WAITING)
    assert "approval" in step.detail
    world.progress = r.promote(release, world.progress, world.now)
    assert world.until(r.SUCCEEDED).finished == 2


def _signals(world, errors_new, lines=100):
    out = {}
    for (rev, slot), state in world.running.items():
        if state == "ready":
            errors = errors_new if rev == 2 else 0
            out[(rev, slot)] = Signal(lines * world.now // 1000, errors * world.now // 1000, 5.0, 2**24)
    return out


def test_a_canary_that_logs_errors_is_rolled_back_by_the_analysis():
    release = _release(4, strategy="canary", canary_count=1, analysis_s=10)
    world = World(release)
    for _ in range(40):
        step = world.round(signals=_signals(world, errors_new=400))
        if step.status == r.ROLLED_BACK:
            break
    assert step.status == r.ROLLED_BACK
    assert "error log lines" in step.progress.reason and "canary analysis failed" in step.detail


def test_a_clean_canary_promotes_itself_when_configured():
    release = _release(4, strategy="canary", canary_count=1, analysis_s=5, auto_promote_s=8)
    world = World(release)
    for _ in range(60):
        step = world.round(signals=_signals(world, errors_new=0))
        if step.status == r.SUCCEEDED:
            break
    assert step.status == r.SUCCEEDED
    assert any(kind == "release.promote" for s in world.steps for kind, _ in s.events)


def test_a_canary_with_no_traffic_is_inconclusive_and_waits():
    release = _release(4, strategy="canary", analysis_s=5, auto_promote_s=5)
    world = World(release)
    step = world.until(r.WAITING)
    assert step.analysis["outcome"] == "inconclusive" and "no data" in step.detail
    with pytest.raises(r.ReleaseError):
        r.promote(release, r.start(release, world.seen()), world.now)  # canaries not analysed yet
    world.progress = r.promote(release, world.progress, world.now)
    assert world.until(r.SUCCEEDED).finished == 2


def test_blue_green_switches_in_one_step_and_switches_back_without_starting_anything():
    release = _release(3, strategy="blue_green")
    world = World(release)
    step = world.until(r.WAITING)
    assert step.traffic == {2} and step.layout == {1: frozenset(range(3)), 2: frozenset(range(3))}
    before = [s.traffic for s in world.steps]
    assert {1, 2} not in before  # never both: the switch is one step
    world.progress = r.rollback(world.progress, world.now, "switch-back")
    step = world.round()
    assert step.status == r.ROLLED_BACK and step.traffic == {1}
    assert step.layout == {1: frozenset(range(3))}


def test_blue_green_manual_switch_and_confirm():
    release = _release(2, strategy="blue_green", switch="manual")
    world = World(release)
    step = world.until(r.WAITING)
    assert step.traffic == {1} and "promote to switch" in step.detail
    world.progress = r.promote(release, world.progress, world.now)
    assert world.round().traffic == {2}
    world.progress = r.promote(release, world.progress, world.now)
    assert world.round().layout == {2: frozenset({0, 1})}


def test_pause_holds_the_layout_and_resume_goes_on():
    release = _release(4)
    world = World(release)
    world.round()
    world.progress = r.pause(world.progress)
    held = world.round()
    assert held.status == r.PAUSED and world.round().layout == held.layout
    world.progress = r.resume(world.progress, world.now)
    assert world.until(r.SUCCEEDED).finished == 2


def test_progress_survives_json():
    import json
    world = World(_release(4, stages=[r._stage({"pools": ["x"]})]))
    world.round()
    again = r.Progress.from_dict(json.loads(json.dumps(world.progress.as_dict())))
    assert again == world.progress
    settings = r.Settings.from_dict(json.loads(json.dumps(world.release.settings.as_dict())))
    assert settings == world.release.settings


def test_analysis_rules():
    quiet = [Signal(100, 0, 5.0, 2**24)]
    assert analyse([Signal(100, 60, 5.0, 2**24)], quiet, 60).signal == "errors"
    assert analyse([Signal(100, 2, 5.0, 2**24)], quiet, 60).outcome == "pass"
    assert analyse([Signal(100, 0, 50.0, 2**24)], quiet, 60).signal == "cpu"
    assert analyse([Signal(100, 0, 5.0, 2**24, restarts=1)], quiet, 60).signal == "restarts"
    assert analyse([Signal(0, 0, 0.1)], [Signal(0, 0, 0.2)], 60).outcome == "inconclusive"
    assert analyse([], quiet, 60).outcome == "inconclusive"


def test_the_reason_says_how_the_new_container_failed():
    release = _release(2, max_failures=1)
    world = World(release)
    world.round()  # slot surges: revision 2 asked for
    failed = r.Seen(world.now, {0: r.SlotSeen(0, r.READY, r.FAILING, 0,
                                              new_failure="its container exited with code 3"),
                                1: r.SlotSeen(1, r.READY)})
    step = r.advance(release, world.progress, failed)
    assert step.progress.reason == ("slot 0 of revision 2 failed 1 time(s): "
                                    "its container exited with code 3")
