"""Round locks: one holder at a time, released by its owner only, chosen by the deployment."""
from __future__ import annotations

import threading

import pytest

from berth import locks


class FakeRedis:
    """SET NX PX and the owner-only scripts, as Redis runs them; expiry is recorded, not timed."""

    def __init__(self):
        self.values, self.ttls, self.renewed = {}, {}, threading.Event()

    def set(self, key, value, nx=False, px=None):
        assert nx and px > 0
        if key in self.values:
            return None
        self.values[key], self.ttls[key] = value, px
        return True

    def eval(self, script, numkeys, key, token, *args):
        assert numkeys == 1 and script in (locks._RELEASE, locks._RENEW)
        if self.values.get(key) != token:
            return 0
        if script == locks._RELEASE:
            del self.values[key]
        else:
            self.ttls[key] = int(args[0])
            self.renewed.set()
        return 1


def test_a_file_lock_excludes_a_second_holder_until_released(tmp_path):
    first, second = (locks.FileLock(tmp_path / "round.lock") for _ in range(2))
    with locks.held(first) as got:
        assert got
        with locks.held(second) as also:
            assert not also
    with locks.held(second) as got:
        assert got


def test_a_redis_lock_is_released_only_by_its_owner():
    redis = FakeRedis()
    first, second = (locks.RedisLock(redis, "round", 60, renew=False) for _ in range(2))
    assert first.acquire() and not second.acquire()
    second.release()  # not the owner: nothing happens
    assert redis.values == {"berth:lock:round": first.token}
    # The lock expired and someone else took it: the old owner must not release theirs.
    redis.values["berth:lock:round"] = "someone-else"
    first.release()
    assert redis.values == {"berth:lock:round": "someone-else"}


def test_a_redis_lock_is_renewed_while_held_and_lapses_soon_if_its_holder_dies():
    redis = FakeRedis()
    lock = locks.RedisLock(redis, "round", 0.03)  # renewed every 10 ms
    assert lock.ttl_ms == 30 and locks.REDIS_TTL_S <= 60  # a dead holder blocks for seconds
    with locks.held(lock):
        assert redis.renewed.wait(5)  # a long round keeps its lock
    assert redis.values == {} and lock._renewer is None


@pytest.mark.parametrize(("broker", "database", "kind"), [
    ("redis://127.0.0.1:6379/0", "postgresql+psycopg://db/berth", locks.RedisLock),
    ("redis://127.0.0.1:6379/0", "sqlite:///x.sqlite", locks.RedisLock),
    ("amqp://127.0.0.1//", "postgresql+psycopg://db/berth", locks.AdvisoryLock),
    ("sqla+sqlite:///broker.sqlite", "sqlite:///x.sqlite", locks.FileLock),
])
def test_the_backend_follows_the_deployment(tmp_path, broker, database, kind):
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://") if database.startswith("postgresql") else None
    lock = locks.lock_for("round", broker_url=broker, database_url=database,
                          instance_dir=tmp_path, engine=engine)
    assert isinstance(lock, kind)


def test_a_round_that_finds_its_previous_run_going_returns_at_once(config, database, monkeypatch):
    from berth import celery_app
    from berth.hosts.tasks import probe_all_hosts

    monkeypatch.setattr(celery_app, "_config", config)
    with locks.held(celery_app.round_lock(probe_all_hosts.name)):
        assert probe_all_hosts() == {"skipped": "the previous run is still going"}
    assert probe_all_hosts() == {"probed": 0, "failed": 0}  # free again: it runs
