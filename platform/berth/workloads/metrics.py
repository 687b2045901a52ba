"""Collecting container CPU from the engines, concurrently: docker's stats take ~2 s each."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from berth import db
from berth.engine import EngineError
from berth.hosts.services import Connect, default_connect, endpoint_of
from berth.models import ContainerInstance, Host

MAX_PARALLEL = 32


def collect_cpu(*, connect: Connect = default_connect) -> int:
    """Record CPU% (100% = one core) on every running instance; returns how many."""
    rows = db.session.execute(
        select(ContainerInstance.id, ContainerInstance.name, Host)
        .join(Host, Host.id == ContainerInstance.host_id)
        .where(ContainerInstance.state == "running", Host.liveness == "up")).all()
    targets = [(row_id, name, endpoint_of(host, timeout_s=10)) for row_id, name, host in rows]
    db.session.commit()  # nothing held while the engines sample

    def sample(target):
        row_id, name, endpoint = target
        engine = connect(endpoint)
        try:
            return row_id, engine.cpu_percent(name)
        except EngineError:
            return row_id, None
        finally:
            engine.close()

    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(targets)))) as pool:
        readings = list(pool.map(sample, targets))
    for row_id, percent in readings:
        row = db.session.get(ContainerInstance, row_id)
        if row is not None:
            row.cpu_percent = percent
    return sum(percent is not None for _, percent in readings)
