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
from berth.hosts.liveness import is_alive
from berth.hosts.overview import stale_after
from berth.hosts.services import Connect, default_connect, endpoint_of
from berth.models import Application, Host


def orphaned(labelled: Iterable[tuple[str, str]], applications: set[str]) -> list[str]:
    """Names of the (container name, application label) pairs whose application is gone."""
    return sorted(name for name, application in labelled if application not in applications)


def sweep_orphans(config: Config, *, connect: Connect = default_connect) -> int:
    """Remove this installation's containers whose application is gone; returns how many.

    The engines are listed before the applications are read: a container listed for an
    application that exists by then is kept, so one being deployed right now never goes."""
    now, stale = utcnow(), stale_after(config.probe_interval_s)
    hosts = [(h.name, endpoint_of(h, timeout_s=10)) for h in db.session.scalars(select(Host))
             if is_alive(h.liveness, h.last_heartbeat_at, now, stale)]
    db.session.commit()  # nothing held while the engines answer
    mine = {LABEL_MANAGED: "1", LABEL_INSTALLATION: config.installation_id}
    listed = []
    for host_name, endpoint in hosts:
        engine = connect(endpoint)
        try:
            listed.append((host_name, endpoint, [(c.name, c.labels.get(LABEL_APPLICATION, ""))
                                                 for c in engine.list_containers(mine)]))
        except EngineError:
            continue  # the next sweep tries again
        finally:
            engine.close()
    applications = set(db.session.scalars(select(Application.name)))
    removed = 0
    for host_name, endpoint, containers in listed:
        for name in orphaned(containers, applications):
            engine = connect(endpoint)
            try:
                engine.remove(name)
            except EngineError:
                continue
            finally:
                engine.close()
            removed += 1
            audit.record("instance.orphan", f"removed {name} from {host_name}: its application "
                         f"no longer exists", subject_type="host", subject=host_name)
    return removed
