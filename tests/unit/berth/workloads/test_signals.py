"""Release signals (berth.workloads.signals): log lines, error lines and memory of the
instances of services in a release, read from the fake fleet's engines look after look."""
from datetime import UTC, datetime, timedelta

import pytest

from berth import db
from berth.celery_app import PROBES, celery, celery_settings
from berth.config import Config
from berth.engine import ContainerSpec
from berth.models import ContainerInstance, Release, Service
from berth.schedule import beat_schedule
from berth.workloads import definitions
from berth.workloads.signals import SETTLE_S, count, error_matcher, look_of, sample_signals
from tests.unit.berth.workloads.fake_fleet import IMAGE

STARTED = datetime(2026, 1, 5, 12, 0, 0)  # the release; every container starts after it


def unix(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def at(seconds: float) -> float:
    """Unix time `seconds` after the release started."""
    return unix(STARTED) + seconds


def look_time(seconds: float) -> datetime:
    """The `now` of a look that reads lines stamped up to `seconds` after the release started."""
    return STARTED + timedelta(seconds=seconds + SETTLE_S)


@pytest.fixture
def shop(fleet):
    """Services api (2 instances, on h1 and h2), web (1) and db (1), each container running on
    its fake engine; api is in a release, web's release is over, db has none."""
    engines, connect = fleet
    h1, h2 = engines.values()
    app = definitions.create_application({"name": "shop", "services": [
        {"name": "api", "image": IMAGE, "replicas": 2}, {"name": "web", "image": IMAGE},
        {"name": "db", "image": IMAGE}]}, actor="admin")
    db.session.flush()
    services = {s.name: s for s in app.services}
    rows = {}
    for name, slot, host_id, engine in (("api", 0, 1, h1), ("api", 1, 2, h2), ("web", 0, 1, h1),
                                        ("db", 0, 2, h2)):
        row = ContainerInstance(service=services[name], slot=slot, revision=1, host_id=host_id,
                                name=f"shop-{name}-1-{slot}", state="running")
        row.container_id = start(engine, row.name)
        rows[f"{name}{slot}"] = row
    db.session.add_all(rows.values())
    db.session.add_all([
        Release(service=services["api"], from_revision=1, to_revision=2, strategy="canary",
                status="running", created_at=STARTED),
        Release(service=services["web"], from_revision=1, to_revision=2, strategy="canary",
                status="succeeded", created_at=STARTED)])
    db.session.commit()
    return {"engines": {1: h1, 2: h2}, "connect": connect, "rows": rows, "services": services}


def start(engine, name: str) -> str:
    state = engine.create(ContainerSpec(name=name, image=IMAGE, labels={}))
    engine.start(state.id)
    return state.id


def row(shop, key) -> ContainerInstance:
    db.session.expire_all()
    return db.session.get(ContainerInstance, shop["rows"][key].id)


def sample(shop, seconds: float) -> dict:
    summary = sample_signals(None, connect=shop["connect"], now=look_time(seconds))
    db.session.commit()
    return summary


def test_lines_and_errors_are_counted_and_memory_is_recorded(shop):
    api0 = shop["rows"]["api0"]
    shop["engines"][1].log(api0.container_id, "GET / 200", "ERROR db timeout",
                           "WARN slow", "GET /x 200", at=at(1))
    shop["engines"][1].in_use[api0.name] = 64 * 2**20
    assert sample(shop, 10) == {"instances": 2, "lines": 4, "errors": 2, "failures": 0}
    seen = row(shop, "api0")
    assert (seen.log_lines, seen.error_lines, seen.memory_bytes) == (4, 2, 64 * 2**20)
    assert seen.logs_read_at == STARTED + timedelta(seconds=10)
    assert seen.logs_container_id == api0.container_id
    other = row(shop, "api1")  # no lines yet: counted as zero, up to the same moment
    assert (other.log_lines, other.error_lines, other.memory_bytes) == (0, 0, None)
    assert other.logs_read_at == seen.logs_read_at


def test_no_line_is_counted_twice_or_lost_between_looks(shop):
    engine, api0 = shop["engines"][1], shop["rows"]["api0"]
    engine.log(api0.container_id, "a", "ERROR b", at=at(1))
    engine.log(api0.container_id, "ERROR on the first look's bound", at=at(10))
    engine.log(api0.container_id, "ERROR after the first look's bound", at=at(10.000001))
    engine.log(api0.container_id, "after the second look", at=at(20.5))
    assert sample(shop, 10)["lines"] == 3
    assert sample(shop, 20)["lines"] == 1
    assert (row(shop, "api0").log_lines, row(shop, "api0").error_lines) == (4, 3)
    assert sample(shop, 30)["lines"] == 1
    assert sample(shop, 40)["lines"] == 0  # nothing new: nothing added
    assert (row(shop, "api0").log_lines, row(shop, "api0").error_lines) == (5, 3)


def test_a_new_container_in_the_slot_is_counted_from_its_start(shop):
    engine, api0 = shop["engines"][1], shop["rows"]["api0"]
    engine.log(api0.container_id, *["ERROR"] * 7, at=at(1))
    sample(shop, 10)
    replaced = db.session.get(ContainerInstance, api0.id)
    engine.remove(replaced.container_id)
    replaced.container_id = start(engine, api0.name)
    db.session.commit()
    engine.log(replaced.container_id, "booting", "ERROR once", at=at(5))  # before the last look
    engine.log(replaced.container_id, "up", at=at(15))
    assert sample(shop, 20)["lines"] == 3
    seen = row(shop, "api0")
    assert (seen.log_lines, seen.error_lines) == (3, 1)
    assert seen.logs_container_id == replaced.container_id


def test_a_container_older_than_the_release_is_counted_from_the_release_on(shop):
    engine, api1 = shop["engines"][2], shop["rows"]["api1"]
    engine.log(api1.container_id, "ERROR last week", at=at(-7 * 86400))
    engine.log(api1.container_id, "ERROR now", at=at(2))
    sample(shop, 10)
    assert (row(shop, "api1").log_lines, row(shop, "api1").error_lines) == (1, 1)


@pytest.mark.parametrize("pattern, lines, errors", [
    ("panic|Traceback", ["panic: nil map", "ERROR not ours", "Traceback (most recent call)"], 2),
    ("level=(error|fatal)", ["level=info a", "level=error b", "level=fatal c"], 2),
    ("([unclosed", ["ERROR a", "WARN b", "INFO c"], 2),  # does not compile: the default
    ("", ["ERROR a", "INFO c"], 1),  # empty: the default
])
def test_each_service_has_its_own_error_pattern(shop, pattern, lines, errors):
    db.session.get(Service, shop["services"]["api"].id).error_pattern = pattern
    db.session.commit()
    api0 = shop["rows"]["api0"]
    shop["engines"][1].log(api0.container_id, *lines, at=at(1))
    sample(shop, 10)
    assert row(shop, "api0").error_lines == errors


def test_only_services_in_a_release_are_read(shop):
    for key in ("web0", "db0", "api0"):
        r = shop["rows"][key]
        shop["engines"][r.host_id].log(r.container_id, "ERROR", at=at(1))
    assert sample(shop, 10)["instances"] == 2
    assert (row(shop, "web0").log_lines, row(shop, "db0").log_lines) == (0, 0)
    assert row(shop, "web0").logs_read_at is None and row(shop, "db0").logs_read_at is None
    asked = {what for engine in shop["engines"].values() for kind, what in engine.calls
             if kind == "logs"}
    assert asked == {f"logs {shop['rows'][k].container_id}" for k in ("api0", "api1")}


@pytest.mark.parametrize("status, read", [("running", True), ("paused", True),
                                          ("waiting", True), ("rolled_back", False),
                                          ("failed", False)])
def test_a_release_is_sampled_while_it_is_under_way(shop, status, read):
    release = db.session.query(Release).filter_by(service_id=shop["services"]["api"].id).one()
    release.status = status
    db.session.commit()
    assert sample(shop, 10)["instances"] == (2 if read else 0)


def test_stopped_instances_and_those_without_a_container_are_not_read(shop):
    api0, api1 = (db.session.get(ContainerInstance, shop["rows"][k].id) for k in ("api0", "api1"))
    api0.state = "exited"
    api1.container_id = None
    db.session.commit()
    assert sample(shop, 10)["instances"] == 0


def test_a_failing_host_is_skipped_and_the_others_are_read(shop):
    shop["engines"][2].alive = False
    api0 = shop["rows"]["api0"]
    shop["engines"][1].log(api0.container_id, "ERROR", at=at(1))
    assert sample(shop, 10) == {"instances": 2, "lines": 1, "errors": 1, "failures": 1}
    assert row(shop, "api1").logs_read_at is None  # read from its start once it answers
    shop["engines"][2].alive = True
    shop["engines"][2].log(shop["rows"]["api1"].container_id, "ERROR late", at=at(5))
    assert sample(shop, 20)["failures"] == 0
    assert (row(shop, "api1").log_lines, row(shop, "api1").error_lines) == (1, 1)


def test_a_container_gone_from_its_engine_is_left_as_it_was(shop):
    api0 = shop["rows"]["api0"]
    shop["engines"][1].log(api0.container_id, "a", at=at(1))
    sample(shop, 10)
    shop["engines"][1].remove(api0.container_id)
    assert sample(shop, 20)["failures"] == 0
    seen = row(shop, "api0")
    assert (seen.log_lines, seen.logs_read_at) == (1, STARTED + timedelta(seconds=10))


def test_a_row_changed_during_the_look_is_not_written(shop, monkeypatch):
    """A slot that got a new container while the engines were asked keeps what the
    reconcile wrote: the counts of the old container do not land on the new one."""
    api0 = shop["rows"]["api0"]
    engine = shop["engines"][1]
    engine.log(api0.container_id, "ERROR", at=at(1))
    original = engine.logs_since

    def replaced_meanwhile(name_or_id, since, until):
        lines = original(name_or_id, since, until)
        with db.engine().begin() as connection:  # the reconcile, in a transaction of its own
            connection.execute(ContainerInstance.__table__.update()
                               .where(ContainerInstance.__table__.c.id == api0.id)
                               .values(container_id="new"))
        return lines

    monkeypatch.setattr(engine, "logs_since", replaced_meanwhile)
    assert sample(shop, 10)["lines"] == 0
    seen = row(shop, "api0")
    assert (seen.container_id, seen.log_lines, seen.logs_read_at) == ("new", 0, None)


def test_a_clock_gone_back_reads_nothing(shop):
    sample(shop, 10)
    assert sample(shop, 5)["instances"] == 0
    assert row(shop, "api0").logs_read_at == STARTED + timedelta(seconds=10)


def test_nothing_in_a_release_means_no_engine_call(fleet, database):
    engines, connect = fleet
    for engine in engines.values():
        engine.calls.clear()  # registering the hosts asked for their info
    assert sample_signals(None, connect=connect) == {"instances": 0, "lines": 0, "errors": 0,
                                                     "failures": 0}
    assert not any(engine.calls for engine in engines.values())


@pytest.mark.parametrize("lines, errors", [
    ([], 0), (["ERROR"], 1), (["an ERROR inside", "warn", "WARN"], 2), (["error"], 0),
])
def test_count_finds_the_pattern_anywhere_in_a_line(lines, errors):
    assert count(lines, error_matcher(None)) == (len(lines), errors)


class RowOf:
    def __init__(self, container_id, logs_container_id, logs_read_at):
        self.id, self.host_id, self.service_id = 1, 1, 1
        self.container_id, self.logs_container_id = container_id, logs_container_id
        self.logs_read_at = logs_read_at


LAST = datetime(2026, 1, 5, 12, 30)


@pytest.mark.parametrize("container, counted, read_at, since, fresh", [
    ("c1", "c1", LAST, LAST, False),  # the same container: where the last look ended
    ("c2", "c1", LAST, STARTED, True),  # a new one: from its start, within the release
    ("c1", None, None, STARTED, True),  # never looked at
    ("c1", "c1", None, STARTED, True),  # no bound kept: counted again from the start
])
def test_where_a_look_starts(container, counted, read_at, since, fresh):
    look = look_of(RowOf(container, counted, read_at), STARTED)
    assert (look.since, look.fresh) == (since, fresh)


def test_the_task_runs_on_the_probes_queue_every_metrics_period(tmp_path):
    celery.loader.import_default_modules()
    task = celery.tasks["berth.workloads.tasks.sample_release_signals"]
    assert task.single_flight is True
    assert not getattr(task, "autoretry_for", ())  # periodic: the next round is the retry
    config = Config.from_env({"BERTH_INSTANCE": str(tmp_path), "BERTH_METRICS_INTERVAL_S": "3"})
    entry = beat_schedule(config)["sample-release-signals"]
    assert entry == {"task": task.name, "schedule": 3.0, "options": {"expires": 3.0}}
    assert celery_settings(config)["task_routes"][task.name]["queue"] == PROBES
