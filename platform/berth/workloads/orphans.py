"""Sweeping orphans: containers this installation created for an application that no longer
exists (a teardown finished while a host was away and was then re-registered, or the
database was restored from an older backup). Containers without this installation's label,
Berth's or not, are never touched.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from berth import audit, db
from berth.clock import utcnow
from berth.config import Config
from berth.engine import LABEL_APPLICATION, LABEL_INSTALLATION, LABEL_MANAGED, EngineError
from berth.hosts.services import Connect, default_connect
from berth.models import Application
from berth.workloads.observe import list_labelled, read_hosts


def orphaned(labelled: Iterable[tuple[str, str]], applications: set[str]) -> list[str]:
    """Names of the (container name, application label) pairs whose application is gone."""
    return sorted(name for name, application in labelled if application not in applications)


def sweep_orphans(config: Config, *, connect: Connect = default_connect) -> int:
    """Remove this installation's containers whose application is gone; returns how many.

    The engines are listed before the applications are read: a container listed for an
    application that exists by then is kept, so one being deployed right now never goes."""
    hosts = {view.id: view for view in read_hosts(config, utcnow())}
    db.session.commit()  # nothing held while the engines answer
    seen, _unreadable = list_labelled(  # an unreadable host waits for the next sweep
        {LABEL_MANAGED: "1", LABEL_INSTALLATION: config.installation_id}, list(hosts.values()), connect)
    applications = set(db.session.scalars(select(Application.name)))
    gone = set(orphaned([(item.container.name, item.container.labels.get(LABEL_APPLICATION, ""))
                         for item in seen], applications))
    removed = 0
    for item in seen:
        if item.container.name not in gone:
            continue
        host = hosts[item.host_id]
        engine = connect(host.endpoint)
        try:
            engine.remove(item.container.id)
        except EngineError:
            continue  # the next sweep tries again
        finally:
            engine.close()
        removed += 1
        audit.record("instance.orphan", f"removed {item.container.name} from {host.name}: its "
                     f"application no longer exists", subject_type="host", subject=host.name)
    return removed
