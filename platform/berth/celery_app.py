"""The Celery application, configured from Berth's Config; tasks take ids and plain JSON.

Web processes only send tasks; the worker and beat run them (entry point: berth.worker).
"""
from __future__ import annotations

import logging

from celery import Celery, Task
from kombu import Exchange, Queue
from sqlalchemy.exc import OperationalError

from berth import db, locks
from berth.config import Config
from berth.engine import EngineError
from berth.schedule import beat_schedule

TASK_MODULES = ["berth.hosts.tasks", "berth.projects.tasks", "berth.workloads.tasks",
                "berth.monitoring.tasks", "registry_sync.tasks"]
log = logging.getLogger(__name__)

# Probes and CPU samples have a queue of their own, consumed by a worker of their own (the
# Procfile's `probes`): a host's liveness must not wait behind a burst of deploys, or every
# host looks stale at once exactly when the fleet is busiest, and a sample that waits misses
# its period (the autoscaler then decides late). A worker started without -Q consumes both.
DEFAULT_QUEUE, PROBES = "celery", "probes"
PROBE_TASKS = ("berth.hosts.tasks.probe_all_hosts", "berth.hosts.tasks.probe_host",
               "berth.workloads.tasks.collect_container_cpu",
               "berth.workloads.tasks.sample_release_signals")

# (soft, hard) time limits in seconds per kind of task. The soft limit raises inside the task
# (SoftTimeLimitExceeded: its unit of work rolls back); the hard one kills the pool process.
# Each is well above what the kind takes today, so only a stuck call (an engine that accepts
# the connection and never answers) reaches it:
TIME_LIMITS = {
    "probe": (60, 90),      # one round: ceil(hosts / 64) waves of at most the probe timeout (3 s)
    "metrics": (120, 150),  # one-shot stats, all at once: 10,000 containers in ~3-5 s
    "autoscale": (60, 90),  # database only: 1,000 services decide in well under a second
    "deploy": (360, 420),   # one pass (it stops acting at reconcile_pass_limit_s, 300 s)
    "reconcile": (540, 600),  # a round over every application
}
DEFAULT_TIME_LIMITS = (300, 360)  # any other task (registry calls)
LONGEST_TASK_S = max(hard for _, hard in [*TIME_LIMITS.values(), DEFAULT_TIME_LIMITS])
# A message the broker handed out and that was not acknowledged in this long is given to
# another worker (Redis' visibility timeout; the embedded broker does the same, see
# berth.broker). Acks are late, so a message is unacknowledged while its task runs, and it may
# first wait for one prefetched task to finish: twice the longest task, so that a task still
# running is never run a second time at once.
VISIBILITY_TIMEOUT_S = 2 * LONGEST_TASK_S

# Failures worth another try of an idempotent task: an engine, the broker or the database did
# not answer (SQLite's "database is locked" is an OperationalError). Anything else is a bug or
# bad input, and trying again would only repeat it.
TRANSIENT_ERRORS = (EngineError, ConnectionError, TimeoutError, OperationalError)
RETRY = dict(autoretry_for=TRANSIENT_ERRORS, retry_backoff=1, retry_backoff_max=30,
             retry_jitter=True, max_retries=4)


def limits(kind: str) -> dict:
    """Task options for `kind`'s time limits: `@celery.task(..., **limits("deploy"))`."""
    soft, hard = TIME_LIMITS[kind]
    return {"soft_time_limit": soft, "time_limit": hard}


celery = Celery("berth", include=TASK_MODULES)


class UnitOfWorkTask(Task):
    """Each task run is one transaction: committed on success, rolled back on error.

    A task declared with `single_flight=True` (periodic rounds) first takes a lock named after
    it; if its previous run still holds it, this run returns at once and does nothing.
    """

    single_flight = False

    def __call__(self, *args, **kwargs):
        if not self.single_flight:
            with db.unit_of_work():
                return super().__call__(*args, **kwargs)
        with locks.held(round_lock(self.name)) as got:
            if not got:
                log.info("%s: the previous run is still going; skipping this one", self.name)
                return {"skipped": "the previous run is still going"}
            with db.unit_of_work():
                return super().__call__(*args, **kwargs)


celery.Task = UnitOfWorkTask


_config: Config | None = None


def settings() -> Config:
    """The Config this process's Celery app was configured with (for task bodies)."""
    if _config is None:
        raise RuntimeError("configure_celery(config) has not been called in this process")
    return _config


def round_lock(name: str) -> locks.Lock:
    """The lock of one periodic round, freed when its holder ends or dies (see berth.locks)."""
    config = settings()
    return locks.lock_for(name, broker_url=config.broker_url,
                          database_url=config.database_url, instance_dir=config.instance_dir,
                          engine=db.engine() if config.database_url.startswith("postgresql") else None)


def celery_settings(config: Config) -> dict:
    """Celery's configuration for `config`: a pure function, so tests can read it."""
    values = dict(
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
        task_default_queue=DEFAULT_QUEUE,
        task_queues=(Queue(DEFAULT_QUEUE, Exchange(DEFAULT_QUEUE), routing_key=DEFAULT_QUEUE),
                     Queue(PROBES, Exchange(PROBES), routing_key=PROBES)),
        task_routes={name: {"queue": PROBES, "routing_key": PROBES} for name in PROBE_TASKS},
        task_soft_time_limit=DEFAULT_TIME_LIMITS[0],
        task_time_limit=DEFAULT_TIME_LIMITS[1],
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    )
    if config.broker_url.startswith("sqla+"):
        values["broker_url"] = config.broker_url.removeprefix("sqla+")
        values["broker_transport"] = "berth.broker:EmbeddedTransport"
    return values


def configure_celery(config: Config) -> Celery:
    global _config
    _config = config
    celery.conf.update(celery_settings(config))
    return celery


def enqueue(task: Task, *args, **kwargs) -> None:
    """Send `task` once the current transaction commits, so it never sees missing rows."""
    db.after_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
