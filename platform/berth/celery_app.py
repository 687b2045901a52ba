"""The Celery application, configured from Berth's Config; tasks take ids and plain JSON.

Web processes only send tasks; the worker and beat run them (entry point: berth.worker).
"""
from __future__ import annotations

from celery import Celery, Task

from berth import db
from berth.config import Config
from berth.schedule import beat_schedule

TASK_MODULES = ["berth.hosts.tasks", "berth.projects.tasks", "berth.workloads.tasks"]

celery = Celery("berth", include=TASK_MODULES)


class UnitOfWorkTask(Task):
    """Each task run is one transaction: committed on success, rolled back on error."""

    def __call__(self, *args, **kwargs):
        with db.unit_of_work():
            return super().__call__(*args, **kwargs)


celery.Task = UnitOfWorkTask


_config: Config | None = None


def settings() -> Config:
    """The Config this process's Celery app was configured with (for task bodies)."""
    if _config is None:
        raise RuntimeError("configure_celery(config) has not been called in this process")
    return _config


def configure_celery(config: Config) -> Celery:
    global _config
    _config = config
    celery.conf.update(
        broker_url=config.broker_url,
        result_backend=config.result_backend,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # A task is acknowledged after it ran, so a worker killed mid-task loses nothing:
        # the task is delivered again, and tasks are idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        result_expires=3600,
        beat_schedule=beat_schedule(config),
        beat_schedule_filename=str(config.instance_dir / "celerybeat-schedule"),
        task_always_eager=False,
    )
    if config.broker_url.startswith("sqla+"):
        celery.conf.broker_url = config.broker_url.removeprefix("sqla+")
        celery.conf.broker_transport = "berth.broker:EmbeddedTransport"
    return celery


def enqueue(task: Task, *args, **kwargs) -> None:
    """Send `task` once the current transaction commits, so it never sees missing rows."""
    db.after_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
