"""A real Celery worker runs Berth's tasks, on the embedded broker and on Redis."""
import pytest

from berth import db
from berth.celery_app import celery, configure_celery, enqueue
from berth.config import Config
from berth.hosts.tasks import probe_host
from berth.models import Host
from tests.support import wait_for

# Each test picks its broker itself: the embedded one of the embedded Berth, or Redis.
pytestmark = pytest.mark.berth_environments("embedded")


def _forget_probes(host_id: int) -> None:
    """Back to 'never probed', so the test sees its own task's effect."""
    with db.unit_of_work():
        host = db.session.get(Host, host_id)
        host.liveness, host.last_heartbeat_at, host.cpus = "unknown", None, None


def _liveness(host_id: int) -> tuple[str, object]:
    with db.unit_of_work():
        host = db.session.get(Host, host_id)
        return host.liveness, host.last_heartbeat_at


def test_probe_runs_on_the_worker_over_the_embedded_broker(berth_app, fleet, database):
    configure_celery(berth_app.config)
    host_id = fleet["e1"]
    _forget_probes(host_id)
    # Add-then-probe as the web does: the task is sent only once the row is committed.
    with db.unit_of_work():
        enqueue(probe_host, host_id)
    state, heartbeat = wait_for(lambda: _liveness(host_id)[0] == "up" and _liveness(host_id),
                                60, "the worker to probe the host")
    assert heartbeat is not None
    with db.unit_of_work():
        assert db.session.get(Host, host_id).cpus >= 1  # hardware read from the real engine


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


def test_probe_runs_on_a_worker_over_redis(berth_app, bed, fleet, database):
    redis_url = bed.state["redis_url"]
    berth_app.start_worker("redis-worker", BROKER_URL=redis_url, RESULT_BACKEND=redis_url)
    try:
        config = Config.from_env({**berth_app.env, "BROKER_URL": redis_url,
                                  "RESULT_BACKEND": redis_url})
        configure_celery(config)
        host_id = fleet["e2"]
        result = probe_host.apply_async(args=(host_id,))
        assert result.get(timeout=60) == {"host_id": host_id, "answered": True}
        assert _liveness(host_id)[0] == "up"
    finally:
        berth_app.stop("redis-worker")
        configure_celery(berth_app.config)
        celery.pool.force_close_all()
