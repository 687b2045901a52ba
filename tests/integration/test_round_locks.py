"""Round locks on the real servers the test bed runs: Redis and a PostgreSQL advisory lock."""
from __future__ import annotations

import redis
from sqlalchemy import create_engine

from berth import locks


def test_redis_lock_one_holder_owner_release_and_expiry(bed):
    client = redis.Redis.from_url(bed.state["redis_url"])
    first, second = locks.RedisLock(client, "it-round"), locks.RedisLock(client, "it-round")
    try:
        assert first.acquire() and not second.acquire()
        # a dead holder's lock lapses on its own, within seconds
        assert 0 < client.pttl(first.key) <= locks.REDIS_TTL_S * 1000
        second.release()  # not the owner: the lock stays
        assert client.get(first.key).decode() == first.token
        first.release()
        assert second.acquire()
        second.release()
        assert client.get(first.key) is None
    finally:
        client.delete(first.key)


def test_postgres_advisory_lock_one_holder_until_released(bed):
    engine = create_engine(bed.state["postgres_url"])
    first, second = locks.AdvisoryLock(engine, "it-round"), locks.AdvisoryLock(engine, "it-round")
    try:
        assert first.acquire() and not second.acquire()
        first.release()
        assert second.acquire()
        second.release()
    finally:
        engine.dispose()
