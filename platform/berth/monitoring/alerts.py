"""Alerts as Berth keeps them: each service's thresholds, the notifications Alertmanager
posts to Berth's webhook (stored once each), and who may see which alert."""
from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from berth.errors import InvalidInput
from berth.models import Application, Service, User
from berth.models.alerts import AlertNotification, AlertThreshold
from berth.projects.services import find_project, role_of
from berth.workloads import access

MAX_P999_S = 3600.0
RECENT_LIMIT = 200


def thresholds(session, service: Service, config) -> dict:
    """The service's thresholds as they apply (its own, or the configured defaults)."""
    row = session.scalar(select(AlertThreshold).where(AlertThreshold.service_id == service.id))
    return {
        "p999_s": row.p999_s if row and row.p999_s else config.alert_p999_s,
        "error_ratio": row.error_ratio if row and row.error_ratio else config.alert_error_ratio,
        "enabled": row.enabled if row else True,
        "custom": row is not None,
        "default_p999_s": config.alert_p999_s,
        "default_error_ratio": config.alert_error_ratio,
        "metrics": bool(getattr(service, "metrics", None)),
    }


def _number(name: str, value, low: float, high: float, low_open: bool = True) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, not {value!r}")
    if isinstance(value, bool) or not math.isfinite(number) or number <= low or number > high:
        raise InvalidInput(f"{name} must be above {low:g} and at most {high:g} (got {value!r})")
    return number


def set_thresholds(session, service: Service, *, p999_s=None, error_ratio=None,
                   enabled=True) -> AlertThreshold:
    """Store the service's thresholds (None: the default); the caller re-renders the rules."""
    p999 = _number("p999_s (seconds)", p999_s, 0, MAX_P999_S)
    ratio = _number("error_ratio (0..1, e.g. 0.05 for 5%)", error_ratio, 0, 1)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false")
    row = session.scalar(select(AlertThreshold).where(AlertThreshold.service_id == service.id))
    if row is None:
        row = AlertThreshold(service_id=service.id)
        session.add(row)
    row.p999_s, row.error_ratio, row.enabled = p999, ratio, enabled
    session.flush()
    return row


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def _instant(text) -> datetime | None:
    """An RFC 3339 time from Alertmanager (nanoseconds, Z) as naive UTC; its zero time
    (0001-01-01, "not ended") as None."""
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00"), 1))
    except ValueError:
        raise InvalidInput(f"not an RFC 3339 time: {text!r}")
    if moment.year <= 1:
        return None
    if moment.tzinfo:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def store_webhook(session, payload) -> int:
    """Keep each alert of an Alertmanager webhook (payload version 4) once: the same
    fingerprint, start and status again is a repeat (Alertmanager resends), not a new row.
    Returns how many rows were new."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise InvalidInput("expected Alertmanager's webhook payload (version 4) with alerts")
    new = 0
    for alert in payload["alerts"]:
        if not isinstance(alert, dict):
            raise InvalidInput("each alert must be an object")
        labels = alert.get("labels") or {}
        status = alert.get("status")
        fingerprint = alert.get("fingerprint")
        starts_at = _instant(alert.get("startsAt"))
        if status not in ("firing", "resolved") or not fingerprint or starts_at is None:
            raise InvalidInput("each alert needs status firing|resolved, fingerprint, startsAt")
        key = (AlertNotification.fingerprint == str(fingerprint)[:64],
               AlertNotification.starts_at == starts_at, AlertNotification.status == status)
        if session.scalar(select(AlertNotification.id).where(*key)) is not None:
            continue
        row = AlertNotification(
            fingerprint=str(fingerprint)[:64], alertname=str(labels.get("alertname", ""))[:255],
            status=status, labels={str(k): str(v) for k, v in labels.items()},
            annotations={str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
            starts_at=starts_at, ends_at=_instant(alert.get("endsAt")))
        try:
            with session.begin_nested():  # another web process may store the same one at once
                session.add(row)
        except IntegrityError:
            continue
        new += 1
    return new


def recent(session, limit: int = RECENT_LIMIT) -> list[AlertNotification]:
    return list(session.scalars(select(AlertNotification).order_by(
        AlertNotification.received_at.desc(), AlertNotification.id.desc()).limit(limit)))


def firing(notifications: list[AlertNotification]) -> list[AlertNotification]:
    """Of notifications newest first, the alerts whose latest word is "firing"."""
    latest: dict[str, AlertNotification] = {}
    for row in notifications:
        current = latest.get(row.fingerprint)
        if current is None or (row.starts_at, row.status == "resolved") > \
                (current.starts_at, current.status == "resolved"):
            latest[row.fingerprint] = row
    return [row for row in latest.values() if row.status == "firing"]


def may_see(user: User, labels: dict, session) -> bool:
    """An alert about an application is for those who may see it; about a project, its
    members; about a host, anyone logged in (as the hosts pages are)."""
    if user.is_admin:
        return True
    if labels.get("application"):
        application = session.scalar(select(Application).where(
            Application.name == labels["application"]))
        return application is not None and access.role(user, application) is not None
    if labels.get("project"):
        project = find_project(labels["project"])
        return project is not None and role_of(user, project) is not None
    return bool(labels.get("host"))


def as_json(row: AlertNotification) -> dict:
    def stamp(moment):
        return moment.replace(tzinfo=UTC).isoformat() if moment else None
    return {"fingerprint": row.fingerprint, "alertname": row.alertname, "status": row.status,
            "labels": row.labels, "annotations": row.annotations,
            "starts_at": stamp(row.starts_at), "ends_at": stamp(row.ends_at),
            "received_at": stamp(row.received_at)}
