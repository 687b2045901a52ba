"""The fake fleet for reconcile-pass tests: two engines registered as live hosts."""
import pytest

from berth import db
from berth.clock import utcnow
from berth.hosts import services as hosts
from tests.unit.berth.workloads.fake_fleet import IMAGE, RecordingEngine


@pytest.fixture
def removals() -> list[str]:
    return []


@pytest.fixture
def fleet(database, config, removals):
    engines = {f"tcp://127.0.0.1:{p}": RecordingEngine(removals, cpus=4, images={IMAGE})
               for p in (1, 2)}
    connect = lambda endpoint: engines[endpoint.url]  # noqa: E731
    for n, url in enumerate(engines, start=1):
        host = hosts.add_host(f"h{n}", url, cluster="c", pool="p", connect=connect)
        host.liveness, host.last_heartbeat_at = "up", utcnow()
    db.session.commit()
    return engines, connect
