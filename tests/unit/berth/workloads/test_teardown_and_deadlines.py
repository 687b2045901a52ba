"""Tearing an application down dependents first, and giving up on dependencies at a deadline."""
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from berth import audit, db
from berth.clock import utcnow
from berth.errors import Conflict
from berth.models import Application, ContainerInstance, Host, Service
from berth.workloads import definitions
from berth.workloads import services as workloads
from berth.workloads.round import PassResult, reconcile_application
from tests.unit.berth.workloads.fake_fleet import IMAGE, THREE_TIER, deploy, running


@pytest.fixture
def no_enqueue(monkeypatch):
    """Operator actions enqueue a deploy task; these tests run the passes themselves."""
    monkeypatch.setattr(workloads, "enqueue", lambda *args, **kwargs: None)


def service_named(app_id: int, name: str) -> Service:
    return db.session.scalar(select(Service).where(Service.application_id == app_id,
                                                   Service.name == name))


def deployed_shop(config, connect):
    app, _ = deploy(THREE_TIER, config, connect, passes=4)
    return app.id


def test_teardown_removes_dependents_first_then_the_application(fleet, config, removals, no_enqueue):
    engines, connect = fleet
    app_id = deployed_shop(config, connect)
    assert len(running(engines)) == 5
    workloads.delete(db.session.get(Application, app_id), actor="admin")
    db.session.commit()
    result = reconcile_application(app_id, config, connect=connect)
    db.session.commit()
    assert result.deleted and running(engines) == []
    services = [name.split("_")[1] for name in removals]
    assert services == ["web", "web", "api", "api", "db"]  # web needs api needs db
    assert db.session.get(Application, app_id) is None
    assert db.session.query(ContainerInstance).count() == 0
    assert [e.kind for e in audit.query(subject="shop")][:2] == [
        "application.delete", "application.teardown"]


def test_a_down_host_holds_the_teardown_until_it_returns(fleet, config, removals, no_enqueue):
    engines, connect = fleet
    app_id = deployed_shop(config, connect)
    db_host = next(url for url, e in engines.items() if "shop_db_1_0" in running({url: e}))
    other = next(url for url in engines if url != db_host)
    host = db.session.query(Host).filter_by(endpoint=db_host).one()
    host.liveness, down_name = "down", host.name
    engines[db_host].alive = False
    workloads.delete(db.session.get(Application, app_id), actor="admin")
    db.session.commit()

    result = reconcile_application(app_id, config, connect=connect)
    db.session.commit()
    assert not result.deleted and not result.settled
    # web went from the reachable host; the web container on the down host holds back api
    # (which it may still use), and api holds back db.
    assert running({other: engines[other]}, "web") == []
    assert running({other: engines[other]}, "api") != []
    statuses = {s.name: (s.status, s.status_detail) for s in db.session.get(Application, app_id).services}
    assert statuses["web"] == ("stopping", f"1 container(s) left on down host(s) {down_name}")
    assert statuses["api"] == statuses["db"] == ("stopping", "waiting for web to stop")

    host = db.session.query(Host).filter_by(endpoint=db_host).one()
    host.liveness, host.last_heartbeat_at = "up", utcnow()
    engines[db_host].alive = True
    db.session.commit()
    assert reconcile_application(app_id, config, connect=connect).deleted
    db.session.commit()
    assert running(engines) == [] and removals[-1] == "shop_db_1_0"


def test_a_deleting_application_refuses_scaling_and_its_name(fleet, config, no_enqueue):
    engines, connect = fleet
    app_id = deployed_shop(config, connect)
    app = db.session.get(Application, app_id)
    workloads.delete(app, actor="admin")
    first = app.deleting_since
    workloads.delete(app, actor="admin")  # asking twice changes nothing
    assert app.deleting_since == first
    with pytest.raises(Conflict, match="torn down"):
        workloads.scale(app.services[0], 3, actor="admin")
    with pytest.raises(Conflict, match="torn down"):
        definitions.create_application(THREE_TIER, actor="admin")


UNREACHABLE_DB = {"name": "stuck", "services": [
    {"name": "db", "image": IMAGE, "cpus": 64},  # fits on no host: never starts
    {"name": "api", "image": IMAGE, "depends_on": {"db": "healthy"}},
    {"name": "web", "image": IMAGE, "depends_on": {"api": "started"}},
]}


def test_a_dependency_wait_fails_at_its_deadline_and_dependents_fail_with_it(fleet, config):
    engines, connect = fleet
    config = replace(config, dependency_timeout_s=300)
    app, [first] = deploy(UNREACHABLE_DB, config, connect)
    assert set(first.waiting) == {"api", "web"} and not first.failed
    api = service_named(app.id, "api")
    assert api.status == "waiting" and api.status_detail == "waiting for db (healthy)"
    # api has waited past the deadline (and so has the last deploy); web only just began.
    long_ago = utcnow() - timedelta(seconds=301)
    api.waiting_since = api.application.deploy_started_at = long_ago
    service_named(app.id, "web").waiting_since = utcnow()
    db.session.commit()

    result = reconcile_application(app.id, config, connect=connect)
    db.session.commit()
    assert result.failed == {"api": "gave up after 300 s waiting for db (healthy)",
                             "web": "cannot start: api failed"}
    assert not result.converged and running(engines) == []
    assert service_named(app.id, "api").status == "failed"

    # A failed service is not abandoned: once db can run, the rest follows, level by level.
    service_named(app.id, "db").cpus = 0.1
    db.session.commit()
    for _ in range(3):
        reconcile_application(app.id, config, connect=connect)
        db.session.commit()
    assert running(engines) == ["stuck_api_1_0", "stuck_db_1_0", "stuck_web_1_0"]
    assert {s.status for s in db.session.get(Application, app.id).services} == {"healthy"}


def test_a_pass_with_only_failed_services_left_is_settled():
    assert PassResult(converged=False, failed={"api": "gave up"}).settled
    assert not PassResult(converged=False, failed={"api": "gave up"}, waiting={"web": "api"}).settled
    assert not PassResult(converged=False, failed={"api": "x"}, problems={"db": "no host"}).settled
    assert not PassResult(converged=False).settled and PassResult().settled


def test_a_deploy_or_scale_restarts_the_dependency_clock(fleet, config):
    engines, connect = fleet
    app, _ = deploy(UNREACHABLE_DB, config, connect)
    api = service_named(app.id, "api")
    api.waiting_since = utcnow() - timedelta(seconds=3600)
    api.application.deploy_started_at = utcnow()  # the operator just acted
    db.session.commit()
    result = reconcile_application(app.id, config, connect=connect)
    assert "api" in result.waiting and not result.failed
