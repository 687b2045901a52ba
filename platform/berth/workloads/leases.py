"""Reconcile leases: a pass owns the applications it works on, by a random token.

Only the owner renews or releases a lease, so a slow pass can never free its successor's;
a lease is renewed while its pass runs and lapses by itself if the pass dies (kill -9), so
the next pass takes over after at most one lease period.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from berth import db
from berth.clock import utcnow
from berth.models import Application


def new_owner() -> str:
    return uuid.uuid4().hex


def acquire(app_ids: Iterable[int] | None, owner: str, now: datetime, lease_s: float
            ) -> list[int]:
    """Take every free (or lapsed) lease among `app_ids` (None: of every application);
    returns the ids now held. Commits."""
    free = or_(Application.reconcile_lease_until.is_(None), Application.reconcile_lease_until < now)
    if app_ids is not None:
        ids = list(app_ids)
        if not ids:
            return []
        free = and_(Application.id.in_(ids), free)
    db.session.execute(update(Application).where(free).values(
        reconcile_lease_until=now + timedelta(seconds=lease_s), reconcile_lease_owner=owner))
    held = list(db.session.scalars(select(Application.id).where(
        Application.reconcile_lease_owner == owner)))
    db.session.commit()
    return held


def _mine(owner: str):
    return and_(Application.reconcile_lease_owner == owner,
                Application.reconcile_lease_until.is_not(None))


def renew(session: Session, owner: str, lease_s: float) -> int:
    """Push the owner's leases on; returns how many it still holds."""
    result = session.execute(update(Application).where(_mine(owner)).values(
        reconcile_lease_until=utcnow() + timedelta(seconds=lease_s)))
    session.commit()
    return result.rowcount


def release(owner: str, app_ids: Iterable[int] | None = None) -> None:
    """Let go of the owner's leases (all, or those of `app_ids`); never anybody else's."""
    condition = _mine(owner)
    if app_ids is not None:
        condition = and_(condition, Application.id.in_(list(app_ids)))
    db.session.execute(update(Application).where(condition).values(
        reconcile_lease_until=None, reconcile_lease_owner=None))
    db.session.commit()


class Renewal:
    """Renews the owner's leases every quarter lease while the pass runs, in a thread with
    its own connection. After `limit_s` it stops renewing and says so (`expired`): a pass
    may not outlive its lease by running on and on, and the caller stops acting."""

    def __init__(self, owner: str, lease_s: float, limit_s: float):
        self.owner, self.lease_s, self.limit_s = owner, lease_s, limit_s
        self._stop = threading.Event()
        self._started = utcnow()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)

    @property
    def expired(self) -> bool:
        return self.lost or (utcnow() - self._started).total_seconds() > self.limit_s

    def _run(self) -> None:
        with Session(db.engine()) as session:
            while not self._stop.wait(self.lease_s / 4):
                if self.expired:
                    return
                try:
                    if renew(session, self.owner, self.lease_s) == 0:
                        self.lost = True  # taken over after a lapse: act no further
                        return
                except Exception:  # a database hiccup: try again next quarter
                    session.rollback()

    def __enter__(self) -> "Renewal":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
