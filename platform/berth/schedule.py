"""The beat schedule, in one place: every periodic reconcile Berth runs.

Each round's task is single-flight (berth.celery_app.UnitOfWorkTask): one that finds its
previous run still going returns at once, so a slow round delays the next instead of piling
rounds up; `expires` drops a round that waited its whole period in the queue.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from berth.config import Config


def beat_schedule(config: "Config") -> dict:
    return {
        "probe-hosts": {
            "task": "berth.hosts.tasks.probe_all_hosts",
            "schedule": config.probe_interval_s,
            # A probe round older than its period is stale; drop it rather than pile up.
            "options": {"expires": config.probe_interval_s},
        },
        "collect-container-cpu": {
            "task": "berth.workloads.tasks.collect_container_cpu",
            "schedule": config.metrics_interval_s,
            "options": {"expires": config.metrics_interval_s},
        },
        "sample-release-signals": {
            "task": "berth.workloads.tasks.sample_release_signals",
            "schedule": config.metrics_interval_s,
            "options": {"expires": config.metrics_interval_s},
        },
        "reconcile-applications": {
            "task": "berth.workloads.tasks.reconcile_all",
            "schedule": config.reconcile_interval_s,
            "options": {"expires": config.reconcile_interval_s},
        },
        "probe-registries": {
            "task": "registry_sync.tasks.probe_registries",
            "schedule": config.mirror_reconcile_interval_s,
            "options": {"expires": config.mirror_reconcile_interval_s},
        },
        "reconcile-mirrors": {
            "task": "registry_sync.tasks.reconcile_mirrors",
            "schedule": config.mirror_reconcile_interval_s,
            "options": {"expires": config.mirror_reconcile_interval_s},
        },
    }
