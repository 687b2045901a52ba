"""The autoscaler on stored CPU readings: it scales as an operator would, says why, cools
down after a scale-up, and refuses a policy that cannot work."""
import pytest

from berth import audit, db
from berth.errors import InvalidInput
from berth.models import Application, ContainerInstance
from berth.workloads import autoscaling
from berth.workloads import services as workloads
from berth.workloads.round import reconcile_application
from tests.unit.berth.workloads.fake_fleet import IMAGE, deploy


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr(workloads, "enqueue", lambda task, *args: sent.append(task.name))
    return sent


@pytest.fixture
def web_service(fleet, config, enqueued):
    """One running instance at 0.1 CPU, with a policy: 1-4 replicas at 50% of the limit."""
    engines, connect = fleet
    app, _ = deploy({"name": "site", "services": [
        {"name": "web", "image": IMAGE, "replicas": 1, "cpus": 0.1}]}, config, connect)
    service = db.session.get(Application, app.id).services[0]
    autoscaling.set_policy(service, {"min_replicas": 1, "max_replicas": 4, "cooldown_s": 0,
                                     "scale_down_stabilization_s": 0}, actor="admin")
    db.session.commit()
    return service


def set_cpu(service, percent_of_one_core):
    for instance in service.instances:
        instance.cpu_percent = percent_of_one_core
    db.session.commit()


def test_busy_instances_are_scaled_up_and_the_event_says_why(web_service, enqueued):
    set_cpu(web_service, 10.0)  # 10% of a core is 100% of a 0.1 CPU limit
    decided = autoscaling.autoscale_all()
    db.session.commit()
    assert web_service.replicas == 2
    assert decided == {"site/web": "CPU 100% of limit > target 50%: 1 -> 2"}
    event = audit.query(kind="service.scale")[0]
    assert event.actor == "autoscaler" and "1 -> 2 replicas (CPU 100% of limit" in event.message
    assert enqueued == ["berth.workloads.tasks.deploy_application"]
    assert web_service.autoscaling.last_decision == decided["site/web"]


def test_idle_instances_are_scaled_down_to_the_minimum(web_service):
    web_service.replicas = 3
    set_cpu(web_service, 0.5)  # 5% of the limit
    autoscaling.autoscale_all()
    db.session.commit()
    assert web_service.replicas == 1


def test_a_second_run_at_once_waits_for_the_replica_it_asked_for(web_service):
    set_cpu(web_service, 10.0)
    autoscaling.autoscale_all()
    decided = autoscaling.autoscale_all()  # a second run at once, as a retried task would
    db.session.commit()
    assert web_service.replicas == 2
    assert decided["site/web"].endswith("but waiting for 1 more to be ready: keeping 2")


def test_a_scale_up_cools_down_before_the_next(web_service):
    autoscaling.set_policy(web_service, {"cooldown_s": 600}, actor="admin")
    set_cpu(web_service, 10.0)
    autoscaling.autoscale_all()
    db.session.commit()
    started = web_service.instances[0]  # the second replica, as the deploy pass would start it
    db.session.add(ContainerInstance(service=web_service, host_id=started.host_id, slot=1,
                                     revision=started.revision, name=started.name + "-2",
                                     state="running"))
    set_cpu(web_service, 10.0)  # both ready, both still busy
    decided = autoscaling.autoscale_all()
    db.session.commit()
    assert web_service.replicas == 2 and "cooling down" in decided["site/web"]


def test_an_unschedulable_service_asks_for_no_more_and_says_why(web_service):
    set_cpu(web_service, 10.0)
    web_service.status, web_service.status_detail = "unschedulable", "0 of 2 hosts fit: 2 lack 8 CPUs"
    decided = autoscaling.autoscale_all()
    db.session.commit()
    assert web_service.replicas == 1
    assert web_service.autoscaling.last_decision == decided["site/web"] == (
        "CPU 100% of limit > target 50%, but it cannot be placed (0 of 2 hosts fit: 2 lack 8 CPUs):"
        " not asking for more: keeping 1")


def test_only_ready_instances_are_the_base(web_service):
    """A manual scale to 4 with one instance running: the busy one asks for 2, not 8."""
    autoscaling.set_policy(web_service, {"max_replicas": 10}, actor="admin")
    workloads.scale(web_service, 4, actor="admin")
    set_cpu(web_service, 10.0)
    decided = autoscaling.autoscale_all()
    assert web_service.replicas == 4
    assert decided["site/web"].endswith("but waiting for 3 more to be ready: keeping 4")


def test_without_readings_nothing_changes(web_service):
    decided = autoscaling.autoscale_all()
    assert web_service.replicas == 1 and decided["site/web"].startswith("no metrics")


def test_a_disabled_policy_is_left_alone(web_service):
    autoscaling.set_policy(web_service, {"enabled": False}, actor="admin")
    set_cpu(web_service, 10.0)
    assert autoscaling.autoscale_all() == {} and web_service.replicas == 1


@pytest.mark.parametrize("changes, message", [
    ({"min_replicas": 5, "max_replicas": 2}, "min_replicas <= max_replicas"),
    ({"max_replicas": 100000}, "at most"),
    ({"cpu_basis": "gpu"}, "cpu_basis"),
    ({"target_cpu_percent": 0}, "target_cpu_percent"),
    ({"cooldown_s": -1}, "0 or more"),
    ({"enabled": "yes"}, "true or false"),
    ({"speed": 3}, "unknown field"),
])
def test_a_policy_that_cannot_work_is_refused_and_nothing_changes(web_service, changes, message):
    before = (web_service.autoscaling.min_replicas, web_service.autoscaling.max_replicas)
    with pytest.raises(InvalidInput, match=message):
        autoscaling.set_policy(web_service, changes, actor="admin")
    db.session.rollback()
    assert (web_service.autoscaling.min_replicas, web_service.autoscaling.max_replicas) == before


def test_the_autoscaler_stops_at_the_project_quota_and_says_so(web_service):
    project = web_service.application.project
    project.quota_cpus = 0.25  # room for two replicas of 0.1 CPU, not three or four
    db.session.commit()
    set_cpu(web_service, 40.0)  # 400% of the limit: it would go to the maximum, 4
    decided = autoscaling.autoscale_all()
    db.session.commit()
    assert web_service.replicas == 2
    assert decided["site/web"].endswith("stopped at 2 replicas by project default's quota (wanted 4)")
    web_service.replicas, project.quota_cpus = 2, 0.2  # at the quota: it asks for nothing more
    db.session.commit()
    for instance in web_service.instances:
        instance.health = "healthy"
    autoscaling.autoscale_all()
    db.session.commit()
    assert web_service.replicas == 2 and "project default's quota" in web_service.autoscaling.last_decision
