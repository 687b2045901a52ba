"""A reconcile pass against fake engines: order, healing, adoption, no duplicates."""
from dataclasses import replace
from datetime import timedelta

import pytest

from berth import audit, db
from berth.clock import utcnow
from berth.engine import LABEL_INSTALLATION, ContainerSpec
from scheduler.orchestration.containers import identity_labels
from berth.errors import InvalidInput
from berth.models import Host
from berth.workloads import definitions
from berth.workloads.round import reconcile_application
from tests.unit.berth.workloads.fake_fleet import IMAGE, THREE_TIER, deploy, running


def test_services_start_level_by_level(fleet, config):
    engines, connect = fleet
    app, [first] = deploy(THREE_TIER, config, connect)
    assert running(engines) == ["shop_db_1_0"]
    assert set(first.waiting) == {"api", "web"} and not first.converged
    reconcile_application(app.id, config, connect=connect)
    assert running(engines, "api") == ["shop_api_1_0", "shop_api_1_1"]
    reconcile_application(app.id, config, connect=connect)
    assert len(running(engines)) == 5
    final = reconcile_application(app.id, config, connect=connect)
    assert final.converged and final.created == 0 and final.removed == 0
    db.session.expire_all()  # read what the passes committed
    assert {s.name: s.status for s in app.services} == {"db": "healthy", "api": "healthy",
                                                        "web": "healthy"}
    live = [i.name for s in app.services for i in s.instances if i.state == "running"]
    assert sorted(live) == running(engines)


def test_a_cycle_is_refused_before_anything_starts(fleet, config):
    engines, connect = fleet
    cyclic = {"name": "loop", "services": [
        {"name": "a", "image": IMAGE, "depends_on": {"b": "started"}},
        {"name": "b", "image": IMAGE, "depends_on": {"a": "started"}}]}
    with pytest.raises(InvalidInput, match="a -> b -> a"):
        definitions.create_application(cyclic, actor="admin")
    assert running(engines) == []


def test_a_killed_container_is_replaced(fleet, config):
    engines, connect = fleet
    app, _ = deploy({"name": "solo", "services": [{"name": "s", "image": IMAGE, "replicas": 2}]},
                    config, connect)
    victim = next(e for e in engines.values() if e.containers)
    name = next(iter(victim.containers.values())).name
    victim.stop(name)
    reconcile_application(app.id, config, connect=connect)
    assert running(engines) == ["solo_s_1_0", "solo_s_1_1"]


def test_containers_of_a_down_host_are_recreated_elsewhere(fleet, config):
    engines, connect = fleet
    app, _ = deploy({"name": "solo", "services": [{"name": "s", "image": IMAGE, "replicas": 2}]},
                    config, connect)
    assert all(len(e.containers) == 1 for e in engines.values())  # spread
    down = db.session.query(Host).filter_by(name="h1").one()
    down.liveness = "down"
    db.session.commit()
    engines["tcp://127.0.0.1:1"].alive = False
    reconcile_application(app.id, config, connect=connect)
    assert len(engines["tcp://127.0.0.1:2"].containers) == 2


def slot_labels(config, app, service, slot, revision=1):
    return identity_labels(config.installation_id, app, service, revision, slot)


def test_after_a_crash_the_next_pass_adopts_and_creates_no_twins(fleet, config):
    engines, connect = fleet
    app = definitions.create_application(
        {"name": "crash", "services": [{"name": "s", "image": IMAGE, "replicas": 2}]}, actor="admin")
    db.session.commit()
    # A pass died after creating slot 0 on h2 and before recording it.
    engine = engines["tcp://127.0.0.1:2"]
    engine.create(ContainerSpec(name="crash_s_1_0", image=IMAGE,
                                labels=slot_labels(config, "crash", "s", 0)))
    engine.start("crash_s_1_0")
    for _ in range(3):
        reconcile_application(app.id, config, connect=connect)
        db.session.commit()
    assert running(engines) == ["crash_s_1_0", "crash_s_1_1"]
    assert [e.message for e in audit.query(kind="instance.adopt")] == ["adopted crash_s_1_0"]


def test_a_container_left_created_is_started(fleet, config):
    engines, connect = fleet
    app = definitions.create_application(
        {"name": "half", "services": [{"name": "s", "image": IMAGE, "replicas": 1}]}, actor="admin")
    db.session.commit()
    # A worker died between create and start.
    engine = engines["tcp://127.0.0.1:1"]
    created = engine.create(ContainerSpec(name="half_s_1_0", image=IMAGE,
                                          labels=slot_labels(config, "half", "s", 0)))
    result = reconcile_application(app.id, config, connect=connect)
    assert engine.containers[created.id].status == "running" and result.created == 0
    assert running(engines) == ["half_s_1_0"]


def test_a_container_left_created_with_a_healthcheck_is_started_but_not_yet_healthy(fleet, config):
    """Booted, it is recorded starting. It once kept the created container's health, None,
    which counts as ready: the service read healthy while discovery left it out (the kill -9
    test on the bed saw it)."""
    engines, connect = fleet
    check = {"test": ["CMD", "true"], "interval_s": 1}
    app = definitions.create_application({"name": "half", "services": [
        {"name": "s", "image": IMAGE, "replicas": 1, "healthcheck": check}]}, actor="admin")
    db.session.commit()
    engine = engines["tcp://127.0.0.1:1"]
    engine.create(ContainerSpec(name="half_s_1_0", image=IMAGE,
                                labels=slot_labels(config, "half", "s", 0)))
    reconcile_application(app.id, config, connect=connect)
    db.session.expire_all()
    [service] = definitions.get_application("half").services
    [instance] = service.instances
    assert (instance.state, instance.health) == ("running", "starting")
    assert service.status == "started" and service.endpoints == []


def test_a_name_held_by_someone_else_is_neither_adopted_nor_removed(fleet, config):
    """Same name, but the labels are another installation's: not this slot's container."""
    engines, connect = fleet
    foreign = {**slot_labels(config, "twin", "s", 0), LABEL_INSTALLATION: "another-berth"}
    for engine in engines.values():
        engine.create(ContainerSpec(name="twin_s_1_0", image=IMAGE, labels=foreign))
        engine.start("twin_s_1_0")
    app, [result] = deploy({"name": "twin", "services": [{"name": "s", "image": IMAGE}]},
                           config, connect)
    assert "taken by a container that is not this slot's" in result.problems["s"]
    assert app.services[0].status == "failing"
    assert all(c.labels[LABEL_INSTALLATION] == "another-berth" and c.status == "running"
               for e in engines.values() for c in e.containers.values())


def test_applications_whose_old_names_collided_run_side_by_side(fleet, config):
    """shop + api-x and shop-api + x were both shop-api-x-1-0 once."""
    engines, connect = fleet
    first, _ = deploy({"name": "shop", "services": [{"name": "api-x", "image": IMAGE}]},
                      config, connect, passes=2)
    second, _ = deploy({"name": "shop-api", "services": [{"name": "x", "image": IMAGE}]},
                       config, connect, passes=2)
    assert running(engines) == ["shop-api_x_1_0", "shop_api-x_1_0"]
    assert reconcile_application(first.id, config, connect=connect).converged
    assert reconcile_application(second.id, config, connect=connect).converged
    assert running(engines) == ["shop-api_x_1_0", "shop_api-x_1_0"]


def test_scaling_down_removes_the_highest_slots(fleet, config):
    engines, connect = fleet
    app, _ = deploy({"name": "solo", "services": [{"name": "s", "image": IMAGE, "replicas": 3}]},
                    config, connect)
    service = app.services[0]
    service.replicas = 1
    db.session.commit()
    reconcile_application(app.id, config, connect=connect)
    assert running(engines) == ["solo_s_1_0"]
    service.replicas = 2
    db.session.commit()
    reconcile_application(app.id, config, connect=connect)  # a removed slot's row is reused
    assert running(engines) == ["solo_s_1_0", "solo_s_1_1"]


def test_no_host_fits_is_explained_on_the_service(fleet, config):
    engines, connect = fleet
    app, [result] = deploy({"name": "big", "services": [
        {"name": "s", "image": IMAGE, "cpus": 64, "replicas": 1}]}, config, connect)
    service = app.services[0]
    assert service.status == "unschedulable" and "0 of 2 hosts fit" in service.status_detail
    assert "lack" in result.problems["s"]


def test_a_second_pass_waits_while_another_holds_the_lease(fleet, config):
    engines, connect = fleet
    app, _ = deploy({"name": "solo", "services": [{"name": "s", "image": IMAGE}]}, config, connect)
    app.reconcile_lease_until = utcnow() + timedelta(seconds=60)
    db.session.commit()
    assert reconcile_application(app.id, config, connect=connect) is None


def test_a_dependency_seen_healthy_is_recorded_before_what_it_lets_start(fleet, config):
    """The round that sees db healthy also starts api: the events keep that order."""
    engines, connect = fleet
    app, _ = deploy({"name": "ord", "services": [
        {"name": "db", "image": IMAGE, "healthcheck": {"test": ["CMD", "true"]}},
        {"name": "api", "image": IMAGE, "depends_on": {"db": "healthy"}}]}, config, connect)
    [(engine, db_container)] = [(e, c) for e in engines.values() for c in e.containers.values()]
    engine.containers[db_container.id] = replace(db_container, health="healthy")
    reconcile_application(app.id, config, connect=connect)
    assert running(engines) == ["ord_api_1_0", "ord_db_1_0"]
    events = [(e.kind, e.subject) for e in reversed(audit.query(subject_type="service"))]
    assert events.index(("service.healthy", "ord/db")) < events.index(("instance.create", "ord/api"))
