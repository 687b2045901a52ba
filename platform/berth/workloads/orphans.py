"""Sweeping orphans: containers this installation created for an application that no longer
exists (a teardown finished while a host was away and was then re-registered, or the
database was restored from an older backup). Containers without this installation's label,
Berth's or not, are never touched.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from berth import audit, db
from berth.config import Config
from berth.engine import LABEL_APPLICATION, LABEL_INSTALLATION, EngineError
from berth.hosts.services import Connect, default_connect
from berth.models import Application
from berth.workloads.observe import HostView, Seen


def orphaned(labelled: Iterable[tuple[str, str]], applications: set[str]) -> list[str]:
    """Names of the (container name, application label) pairs whose application is gone."""
    return sorted(name for name, application in labelled if application not in applications)


def sweep_orphans(config: Config, seen: list[Seen], hosts: dict[int, HostView], *,
                  connect: Connect = default_connect) -> int:
    """Remove, of the containers a round listed, this installation's whose application is
    gone; returns how many. The applications are read after the engines were listed, so a
    container listed for an application that exists by then is kept: one being deployed
    right now never goes."""
    ours = [item for item in seen
            if item.container.labels.get(LABEL_INSTALLATION) == config.installation_id]
    applications = set(db.session.scalars(select(Application.name)))
    db.session.commit()  # nothing held while the engines answer
    gone = set(orphaned([(item.container.id, item.container.labels.get(LABEL_APPLICATION, ""))
                         for item in ours], applications))
    removed = []
    for item in ours:
        if item.container.id not in gone:
            continue
        host = hosts[item.host_id]
        engine = connect(host.endpoint)
        try:
            engine.remove(item.container.id)
        except EngineError:
            continue  # the next sweep tries again
        finally:
            engine.close()
        removed.append((item.container.name, host.name))
    for name, host in removed:
        audit.record("instance.orphan", f"removed {name} from {host}: its application no "
                     f"longer exists", subject_type="host", subject=host)
    db.session.commit()
    return len(removed)
