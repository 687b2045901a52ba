"""Named locks that keep a periodic round from overlapping itself, on whatever Berth runs on.

One lock per round name, tried without waiting: a beat round that finds its previous run
still going returns at once. The backend follows the deployment, so no table is needed:
- Redis broker: `SET key token NX PX ttl`, renewed by its holder while it runs and released
  only by its owner (compare-and-delete); the short expiry frees a lock whose worker died;
- PostgreSQL without Redis: a session advisory lock, freed when its connection closes;
- SQLite (one machine by definition): an flock() on a file in the instance folder, freed
  by the kernel when the process that holds it dies.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


class Lock(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class FileLock:
    """flock() is per open file: two FileLocks on one path exclude each other, in one process too."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # in the private instance
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# Deletes the key only if it still holds our token: a lock that expired and was taken by
# another run must not be released by the run that lost it.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# Extends the key's expiry, again only for its owner.
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2])"
          " end return 0")
# A Redis lock lives this long unless its holder renews it (every third of it, from a thread).
# Short, so that a worker killed with -9 mid-round blocks the next rounds for seconds, not for
# the round's whole time limit; renewed, so that a long round keeps it.
REDIS_TTL_S = 30.0


class RedisLock:
    def __init__(self, client, name: str, ttl_s: float = REDIS_TTL_S, *, renew: bool = True):
        self.client, self.key, self.ttl_ms = client, f"berth:lock:{name}", max(1, int(ttl_s * 1000))
        self.token = secrets.token_hex(16)
        self.renew = renew
        self._held = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        self._held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        if self._held and self.renew:
            self._stop.clear()
            self._renewer = threading.Thread(target=self._keep, name=f"renew {self.key}", daemon=True)
            self._renewer.start()
        return self._held

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms):
                    log.warning("lock %s was lost (expired and taken); no longer renewing", self.key)
                    return
            except Exception:  # Redis away for a moment: try again next time, it may hold
                log.warning("could not renew lock %s", self.key, exc_info=True)

    def release(self) -> None:
        if self._renewer is not None:
            self._stop.set()
            self._renewer.join(timeout=5)
            self._renewer = None
        if self._held:
            self.client.eval(_RELEASE, 1, self.key, self.token)
            self._held = False


class AdvisoryLock:
    """pg_try_advisory_lock on a connection of its own, held until release (or its death)."""

    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        # Advisory keys are one bigint: a stable 63-bit hash of the name.
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1
        self._connection = None

    def acquire(self) -> bool:
        connection = self.engine.connect()
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        if not got:
            connection.close()
            return False
        connection.commit()  # no transaction left open while the round runs
        self._connection = connection
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            connection.commit()
        except Exception:
            # Never hand a connection that may still hold the lock back to the pool.
            connection.invalidate()
            raise
        finally:
            connection.close()


_clients: dict[str, object] = {}


def _redis(url: str):
    # One client (and connection pool) per process; redis-py resets the pool after a fork.
    if url not in _clients:
        import redis

        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def lock_for(name: str, *, broker_url: str, database_url: str, instance_dir: Path,
             engine: Engine | None = None) -> Lock:
    """The lock this deployment can share between its workers."""
    if broker_url.startswith(("redis://", "rediss://")):
        return RedisLock(_redis(broker_url), name)
    if database_url.startswith("postgresql"):
        if engine is None:
            raise ValueError("a PostgreSQL advisory lock needs the database engine")
        return AdvisoryLock(engine, name)
    return FileLock(instance_dir / "locks" / f"{name}.lock")


@contextmanager
def held(lock: Lock) -> Iterator[bool]:
    """Yields whether the lock was taken; releases it on the way out if it was."""
    got = lock.acquire()
    try:
        yield got
    finally:
        if got:
            lock.release()
