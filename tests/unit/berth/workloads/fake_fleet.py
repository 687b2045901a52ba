"""Fake engines that log removals, and helpers to deploy on them pass by pass (the fleet
fixture in conftest.py registers two of them as live hosts)."""
from __future__ import annotations

from berth import db
from berth.engine import LABEL_SERVICE
from berth.engine.fake import FakeEngine
from berth.workloads import definitions
from berth.workloads.round import reconcile_application

IMAGE = "127.0.0.1:5000/library/busybox:1"

THREE_TIER = {"name": "shop", "services": [
    {"name": "db", "image": IMAGE, "replicas": 1},
    {"name": "api", "image": IMAGE, "replicas": 2, "depends_on": {"db": "healthy"}},
    {"name": "web", "image": IMAGE, "replicas": 2, "depends_on": {"api": "started"}},
]}


class RecordingEngine(FakeEngine):
    """A fake engine that adds each container it removes to a log shared by the fleet,
    so tests see the order across engines."""

    def __init__(self, removals: list[str], **kwargs):
        super().__init__(**kwargs)
        self.removals = removals

    def remove(self, name_or_id: str, force: bool = True) -> None:
        state = self._find(name_or_id)
        super().remove(name_or_id, force)
        if state is not None:
            self.removals.append(state.name)


def deploy(raw, config, connect, passes=1):
    app = definitions.create_application(raw, actor="admin")
    db.session.commit()
    results = [reconcile_application(app.id, config, connect=connect) for _ in range(passes)]
    db.session.commit()
    return app, results


def running(engines, service=None):
    return sorted(c.name for e in engines.values() for c in e.containers.values()
                  if c.status == "running" and (service is None or c.labels[LABEL_SERVICE] == service))
