"""Celery as a distributed engine: queues, time limits, retries, redelivery, beat rounds."""
from __future__ import annotations

import pytest

from berth import celery_app
from berth.celery_app import LONGEST_TASK_S, PROBES, VISIBILITY_TIMEOUT_S, celery, celery_settings
from berth.config import Config

ROUNDS = ("berth.hosts.tasks.probe_all_hosts", "berth.workloads.tasks.reconcile_all",
          "berth.workloads.tasks.collect_container_cpu")


@pytest.fixture(scope="module")
def tasks():
    celery.loader.import_default_modules()
    return celery.tasks


def settings(tmp_path, **env):
    return celery_settings(Config.from_env({"BERTH_INSTANCE": str(tmp_path), **env}))


def test_probes_and_samples_have_their_own_queue_and_a_plain_worker_consumes_both(tmp_path):
    values = settings(tmp_path)
    assert values["task_routes"]["berth.hosts.tasks.probe_all_hosts"]["queue"] == PROBES
    assert values["task_routes"]["berth.hosts.tasks.probe_host"]["queue"] == PROBES
    assert values["task_routes"]["berth.workloads.tasks.collect_container_cpu"]["queue"] == PROBES
    assert "berth.workloads.tasks.deploy_application" not in values["task_routes"]
    assert [q.name for q in values["task_queues"]] == ["celery", PROBES]


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:6379/0", None])
def test_a_message_is_redelivered_only_after_the_longest_task(tmp_path, broker):
    values = settings(tmp_path, **({"BROKER_URL": broker} if broker else {}))
    assert values["broker_transport_options"]["visibility_timeout"] == VISIBILITY_TIMEOUT_S
    assert VISIBILITY_TIMEOUT_S > LONGEST_TASK_S


def test_the_embedded_broker_is_berths_transport(tmp_path):
    values = settings(tmp_path)
    assert values["broker_transport"] == "berth.broker:EmbeddedTransport"
    assert values["broker_url"].startswith("sqlite:///")
    assert "broker_transport" not in settings(tmp_path, BROKER_URL="redis://127.0.0.1:6379/0")


def test_every_task_has_a_soft_limit_below_its_hard_one(tasks):
    ours = {name: task for name, task in tasks.items() if name.startswith("berth.")}
    assert len(ours) >= 7
    for name, task in ours.items():
        # A task without its own limits gets the configured defaults (task_*time_limit).
        soft = task.soft_time_limit or celery_app.DEFAULT_TIME_LIMITS[0]
        hard = task.time_limit or celery_app.DEFAULT_TIME_LIMITS[1]
        assert 0 < soft < hard <= LONGEST_TASK_S, name


@pytest.mark.parametrize(("name", "kind"), [
    ("berth.hosts.tasks.probe_all_hosts", "probe"),
    ("berth.hosts.tasks.probe_host", "probe"),
    ("berth.workloads.tasks.deploy_application", "deploy"),
    ("berth.workloads.tasks.reconcile_all", "reconcile"),
    ("berth.workloads.tasks.collect_container_cpu", "metrics"),
    ("berth.workloads.tasks.autoscale_services", "autoscale"),
])
def test_time_limits_per_kind(tasks, name, kind):
    assert (tasks[name].soft_time_limit, tasks[name].time_limit) == celery_app.TIME_LIMITS[kind]


@pytest.mark.parametrize(("name", "retries"), [
    ("berth.workloads.tasks.deploy_application", True),  # idempotent: a retried pass finds its containers
    ("berth.hosts.tasks.probe_host", True),
    ("berth.workloads.tasks.autoscale_services", True),  # safe twice (see its docstring)
    ("berth.hosts.tasks.probe_all_hosts", False),  # periodic: the next round is the retry
    ("berth.workloads.tasks.reconcile_all", False),
    ("berth.workloads.tasks.collect_container_cpu", False),
])
def test_retries_only_where_safe_and_only_on_transient_errors(tasks, name, retries):
    task = tasks[name]
    assert bool(getattr(task, "autoretry_for", ())) is retries
    if retries:
        assert set(task.autoretry_for) == set(celery_app.TRANSIENT_ERRORS)
        assert task.retry_backoff and task.max_retries


@pytest.mark.parametrize("name", ROUNDS)
def test_beat_rounds_cannot_overlap_themselves(tasks, name):
    assert tasks[name].single_flight is True


def test_tasks_sent_from_outside_rounds_are_not_locked(tasks):
    assert tasks["berth.workloads.tasks.deploy_application"].single_flight is False
