"""A real Celery worker runs Berth's tasks, on the embedded broker and on Redis."""
import pytest

from berth import db
from berth.celery_app import celery, configure_celery, enqueue
from berth.config import Config
from berth.hosts import services
from berth.hosts.tasks import probe_host
from berth.models import Host
from tests.support import wait_for


def _add_engine_as_host(bed, engine_name: str, host_name: str) -> int:
    engine = bed.engine(engine_name)
    with db.unit_of_work():
        host = services.add_host(host_name, engine["url"], cluster="it", pool="workers",
                                 port_range=tuple(engine["port_range"]))
        db.session.flush()
        return host.id


def _liveness(host_id: int) -> tuple[str, object]:
    with db.unit_of_work():
        host = db.session.get(Host, host_id)
        return host.liveness, host.last_heartbeat_at


def test_probe_runs_on_the_worker_over_the_embedded_broker(berth_app, bed, database):
    configure_celery(berth_app.config)
    host_id = _add_engine_as_host(bed, "e1", "it-worker-embedded")
    # Add-then-probe as the web does: the task is sent only once the row is committed.
    with db.unit_of_work():
        enqueue(probe_host, host_id)
    state, heartbeat = wait_for(lambda: _liveness(host_id)[0] == "up" and _liveness(host_id),
                                60, "the worker to probe the host")
    assert heartbeat is not None


def test_enqueue_sends_nothing_when_the_transaction_rolls_back(berth_app, database, monkeypatch):
    sent = []
    monkeypatch.setattr(probe_host, "apply_async", lambda **kw: sent.append(kw))
    with pytest.raises(RuntimeError):
        with db.unit_of_work():
            enqueue(probe_host, 123)
            raise RuntimeError("abandon")
    with db.unit_of_work():
        enqueue(probe_host, 456)
    assert sent == [{"args": (456,), "kwargs": {}}]


def test_probe_runs_on_a_worker_over_redis(berth_app, bed, database):
    redis_url = bed.state["redis_url"]
    berth_app.start_worker("redis-worker", BROKER_URL=redis_url, RESULT_BACKEND=redis_url)
    try:
        config = Config.from_env({**berth_app.env, "BROKER_URL": redis_url,
                                  "RESULT_BACKEND": redis_url})
        configure_celery(config)
        host_id = _add_engine_as_host(bed, "e2", "it-worker-redis")
        result = probe_host.apply_async(args=(host_id,))
        assert result.get(timeout=60) == {"host_id": host_id, "answered": True}
        assert _liveness(host_id)[0] == "up"
    finally:
        berth_app.stop("redis-worker")
        configure_celery(berth_app.config)
        celery.pool.force_close_all()
