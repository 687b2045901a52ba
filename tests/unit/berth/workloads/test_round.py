"""A whole round over fake engines: one list per host, isolation between applications, no
transaction held while the engines answer."""
from berth import audit, db
from berth.workloads import definitions, round as rounds
from berth.workloads.round import run_round
from tests.unit.berth.workloads.fake_fleet import IMAGE, running


def define(*names, replicas=2):
    for name in names:
        definitions.create_application({"name": name, "services": [
            {"name": "s", "image": IMAGE, "replicas": replicas}]}, actor="admin")
    db.session.commit()


def test_a_steady_round_lists_each_host_once_and_does_nothing_else(fleet, config):
    engines, connect = fleet
    define("a", "b", "c")
    assert run_round(config, connect=connect)["actions"] == 6
    for engine in engines.values():
        engine.calls.clear()
    summary = run_round(config, connect=connect)
    assert summary["actions"] == 0 and summary["converged"] == 3
    assert [[kind for kind, _ in e.calls] for e in engines.values()] == [["list"], ["list"]]


def test_one_application_that_breaks_stops_no_other(fleet, config, monkeypatch):
    engines, connect = fleet
    define("good", "bad", "fine")
    real = rounds.plan_application

    def plan(app, *args):
        if app.name == "bad":
            raise RuntimeError("a bug in one plan")
        return real(app, *args)
    monkeypatch.setattr(rounds, "plan_application", plan)
    summary = run_round(config, connect=connect)
    assert summary["broken"] == 1
    assert running(engines) == ["fine_s_1_0", "fine_s_1_1", "good_s_1_0", "good_s_1_1"]
    [event] = audit.query(kind="application.error")
    assert "reconcile of bad failed: RuntimeError: a bug in one plan" in event.message


def test_no_transaction_is_open_while_the_engines_answer(fleet, config):
    engines, connect = fleet
    define("a")
    main = db.session()
    seen = []

    class Watching:
        def __init__(self, engine):
            self.engine = engine

        def __getattr__(self, name):
            call = getattr(self.engine, name)

            def watched(*args, **kwargs):
                seen.append((name, main.in_transaction()))
                return call(*args, **kwargs)
            return watched

    run_round(config, connect=lambda endpoint: Watching(connect(endpoint)))
    calls = {name for name, _ in seen}
    assert {"list_containers", "pull", "create", "start"} <= calls
    assert [name for name, open_ in seen if open_] == []
