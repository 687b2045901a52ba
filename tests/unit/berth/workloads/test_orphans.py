"""Sweeping orphans: only this installation's containers of applications that are gone."""
from sqlalchemy import delete

from berth import audit, db
from berth.engine import LABEL_APPLICATION, LABEL_INSTALLATION, LABEL_MANAGED, ContainerSpec
from berth.models import Application, ContainerInstance, Service
from berth.workloads.orphans import orphaned
from berth.workloads.round import run_round
from tests.unit.berth.workloads.fake_fleet import IMAGE, deploy, running


def test_orphaned_names_the_containers_of_unknown_applications():
    assert orphaned([("a_s_1_0", "a"), ("b_s_1_0", "b"), ("c_s_1_0", "")], {"a"}) == [
        "b_s_1_0", "c_s_1_0"]


def start(engine, name, labels):
    engine.create(ContainerSpec(name=name, image=IMAGE, labels=labels))
    engine.start(name)


def test_the_sweep_removes_only_its_own_orphans(fleet, config):
    engines, connect = fleet
    kept, _ = deploy({"name": "kept", "services": [{"name": "s", "image": IMAGE, "replicas": 2}]},
                     config, connect)
    gone, _ = deploy({"name": "gone", "services": [{"name": "s", "image": IMAGE, "replicas": 2}]},
                     config, connect)
    # The database forgets `gone` (restored from an older backup, say).
    service_ids = [s.id for s in gone.services]
    db.session.execute(delete(ContainerInstance).where(ContainerInstance.service_id.in_(service_ids)))
    db.session.execute(delete(Service).where(Service.id.in_(service_ids)))
    db.session.execute(delete(Application).where(Application.name == "gone"))
    db.session.commit()
    engine = next(iter(engines.values()))
    start(engine, "other-berth-1", {LABEL_MANAGED: "1", LABEL_INSTALLATION: "someone-else",
                                    LABEL_APPLICATION: "gone"})
    start(engine, "hand-made", {LABEL_APPLICATION: "gone"})

    assert run_round(config, connect=connect)["orphans_removed"] == 2
    assert running(engines) == ["hand-made", "kept_s_1_0", "kept_s_1_1", "other-berth-1"]
    assert len(audit.query(kind="instance.orphan")) == 2
    assert run_round(config, connect=connect)["orphans_removed"] == 0  # twice is safe
