"""Inventory services against a fake engine: what is saved, and what is not."""
from datetime import timedelta

import pytest

from berth import db
from berth.engine.fake import FakeEngine
from berth.errors import Conflict, InvalidInput
from berth.hosts import services
from berth.models import Event, Host


def connect_to(engines: dict[str, FakeEngine]):
    return lambda endpoint: engines[endpoint.url]


def test_add_host_reads_hardware_from_the_engine(database):
    engines = {"tcp://127.0.0.1:1": FakeEngine(cpus=32, memory=32 * 2**30)}
    host = services.add_host("h1", "tcp://127.0.0.1:1", cluster="web", pool="p1", idc="bj",
                             labels={"disk": "ssd"}, connect=connect_to(engines))
    db.session.commit()
    assert (host.cpus, host.memory, host.pool.cluster.name) == (32.0, 32 * 2**30, "web")


def test_a_host_whose_engine_answered_is_up_at_once(database):
    """Adding it was a successful probe: the first deploy need not wait for beat's next one."""
    from berth.clock import utcnow
    from berth.hosts.liveness import is_alive

    engines = {"tcp://127.0.0.1:1": FakeEngine()}
    host = services.add_host("h1", "tcp://127.0.0.1:1", cluster="web", pool="p1",
                             connect=connect_to(engines))
    db.session.commit()
    assert (host.liveness, host.consecutive_failures) == ("up", 0)
    assert is_alive(host.liveness, host.last_heartbeat_at, utcnow(), timedelta(seconds=30))


def test_unreachable_engine_saves_nothing(database):
    engines = {"tcp://127.0.0.1:1": FakeEngine(alive=False)}
    with pytest.raises(InvalidInput, match="did not answer"):
        services.add_host("h1", "tcp://127.0.0.1:1", cluster="web", pool="p1",
                          connect=connect_to(engines))
    db.session.rollback()
    assert db.session.query(Host).count() == 0


@pytest.mark.parametrize("endpoint", ["http://x:2375", "127.0.0.1:2375", ""])
def test_bad_endpoint_is_refused(database, endpoint):
    with pytest.raises(InvalidInput, match="unix:// or tcp://"):
        services.add_host("h1", endpoint, cluster="web", pool="p1", connect=connect_to({}))


def test_probes_mark_a_host_down_then_up_with_events(database):
    engine = FakeEngine()
    engines = {"tcp://127.0.0.1:1": engine}
    connect = connect_to(engines)
    host = services.add_host("h1", "tcp://127.0.0.1:1", cluster="web", pool="p1", connect=connect)
    db.session.commit()

    def probe():
        services.probe_hosts(None, failures_for_down=2, timeout_s=1, connect=connect)
        db.session.commit()
        return db.session.get(Host, host.id).liveness

    assert probe() == "up"
    engine.alive = False
    assert probe() == "up"  # one failure is tolerated
    assert probe() == "down"
    engine.alive = True
    assert probe() == "up"
    kinds = [e.kind for e in db.session.query(Event).order_by(Event.id) if e.kind.startswith("host.")]
    assert kinds == ["host.add", "host.down", "host.up"]  # added up: the first probe changes nothing


def test_one_engine_is_registered_once(database):
    engines = {"tcp://127.0.0.1:1": FakeEngine()}
    services.add_host("h1", "tcp://127.0.0.1:1", cluster="web", pool="p1", connect=connect_to(engines))
    with pytest.raises(Conflict, match="already registered as host 'h1'"):
        services.add_host("h2", "tcp://127.0.0.1:1", cluster="web", pool="p1",
                          connect=connect_to(engines))


def test_a_newcomer_s_local_engine_becomes_the_first_host_once(database):
    local = services.LOCAL_ENGINE
    said = services.adopt_local_engine(connect=connect_to({local: FakeEngine(cpus=8, memory=2**33)}))
    db.session.commit()
    assert said == f"added this machine's Docker engine ({local}) as host local: 8 CPUs, 8192 MiB"
    host = db.session.query(Host).one()
    assert (host.name, host.endpoint, host.pool.name, host.liveness) == ("local", local, "default", "up")
    again = services.adopt_local_engine(connect=connect_to({local: FakeEngine()}))
    assert again == "hosts are registered already: no local engine added"
    assert db.session.query(Host).count() == 1


def test_no_local_engine_is_said_and_adds_nothing(database):
    said = services.adopt_local_engine(connect=connect_to({services.LOCAL_ENGINE: FakeEngine(alive=False)}))
    assert said.startswith("no local engine added: the engine at unix:///var/run/docker.sock did not answer")
    assert db.session.query(Host).count() == 0
