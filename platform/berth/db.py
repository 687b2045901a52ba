"""The database: the declarative base, one engine per process, and the unit of work.

Service functions change `session()`; the edge (a request, a task) owns the transaction
through `unit_of_work()` or the web teardown. Work that must only happen once rows are
committed (enqueuing tasks) is registered with `after_commit`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

# Named constraints let Alembic alter them, on SQLite (batch mode) too.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_factory = sessionmaker(expire_on_commit=False)
session: scoped_session[Session] = scoped_session(_factory)
_engine: Engine | None = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets the web, the worker and beat read while one of them writes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def prepare_sqlite(url: str) -> None:
    """A SQLite database file is created 0600 in a 0700 folder before SQLite opens it: it
    holds engine TLS keys and password hashes. Other URLs are left alone."""
    if url.startswith("sqlite:///"):
        from berth.config import private_file, private_folder

        path = Path(url.removeprefix("sqlite:///"))
        private_folder(path.parent)
        private_file(path)


def configure(url: str) -> Engine:
    """Point this process's sessions at `url`. Called by the app factory and worker start."""
    global _engine
    if _engine is not None and _engine.url == make_url(url):
        return _engine
    if _engine is not None:
        session.remove()
        _engine.dispose()
    prepare_sqlite(url)
    _engine = make_engine(url)
    _factory.configure(bind=_engine)
    return _engine


def engine() -> Engine:
    if _engine is None:
        raise RuntimeError("berth.db.configure(url) has not been called in this process")
    return _engine


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current transaction commits; drop it on rollback."""
    session().info.setdefault("after_commit", []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(sess: Session) -> None:
    for callback in sess.info.pop("after_commit", []):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(sess: Session, _previous_transaction) -> None:
    sess.info.pop("after_commit", None)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction for a task or a command: commit on success, roll back on error."""
    sess = session()
    try:
        yield sess
        sess.commit()
    except BaseException:
        sess.rollback()
        raise
    finally:
        session.remove()
