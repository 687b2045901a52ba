"""A reconcile pass against fake engines: order, healing, adoption, no duplicates."""
from datetime import timedelta

import pytest

from berth import db
from berth.clock import utcnow
from berth.engine import LABEL_APPLICATION, LABEL_MANAGED, LABEL_REVISION, LABEL_SERVICE, LABEL_SLOT, ContainerSpec
from berth.errors import InvalidInput
from berth.models import Host
from berth.workloads import definitions
from berth.workloads.reconcile import reconcile_application
from tests.unit.berth.workloads.fake_fleet import IMAGE, THREE_TIER, deploy, running


def test_services_start_level_by_level(fleet, config):
    engines, connect = fleet
    app, [first] = deploy(THREE_TIER, config, connect)
    assert running(engines) == ["shop-db-1-0"]
    assert set(first.waiting) == {"api", "web"} and not first.converged
    reconcile_application(app.id, config, connect=connect)
    assert running(engines, "api") == ["shop-api-1-0", "shop-api-1-1"]
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
    assert running(engines) == ["solo-s-1-0", "solo-s-1-1"]


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


def test_after_a_crash_the_next_pass_adopts_and_creates_no_twins(fleet, config):
    engines, connect = fleet
    app = definitions.create_application(
        {"name": "crash", "services": [{"name": "s", "image": IMAGE, "replicas": 2}]}, actor="admin")
    db.session.commit()
    # A pass died after creating slot 0 on h2 and before recording it.
    engine = engines["tcp://127.0.0.1:2"]
    engine.create(ContainerSpec(name="crash-s-1-0", image=IMAGE, labels={
        LABEL_MANAGED: "1", LABEL_APPLICATION: "crash", LABEL_SERVICE: "s", LABEL_SLOT: "0",
        LABEL_REVISION: "1"}))
    engine.start("crash-s-1-0")
    for _ in range(3):
        reconcile_application(app.id, config, connect=connect)
        db.session.commit()
    assert running(engines) == ["crash-s-1-0", "crash-s-1-1"]


def test_scaling_down_removes_the_highest_slots(fleet, config):
    engines, connect = fleet
    app, _ = deploy({"name": "solo", "services": [{"name": "s", "image": IMAGE, "replicas": 3}]},
                    config, connect)
    service = app.services[0]
    service.replicas = 1
    db.session.commit()
    reconcile_application(app.id, config, connect=connect)
    assert running(engines) == ["solo-s-1-0"]
    service.replicas = 2
    db.session.commit()
    reconcile_application(app.id, config, connect=connect)  # a removed slot's row is reused
    assert running(engines) == ["solo-s-1-0", "solo-s-1-1"]


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


def test_cpu_is_collected_for_running_instances(fleet, config):
    from berth.workloads.metrics import collect_cpu

    engines, connect = fleet
    app, _ = deploy({"name": "cpu", "services": [{"name": "s", "image": IMAGE, "replicas": 1}]},
                    config, connect)
    for engine in engines.values():
        engine.cpu = {"cpu-s-1-0": 42.5}
    assert collect_cpu(connect=connect) == 1
    db.session.commit()  # as the task's unit of work does
    db.session.expire_all()
    assert app.services[0].instances[0].cpu_percent == 42.5
