"""Alertmanager: the configuration Berth renders for it, and a small client of its API v2
(alerts, silences) for the alerts page."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
import yaml

from berth.monitoring.rules import duration

GROUP_BY = ["alertname", "application", "service", "host"]
RECEIVER = "berth"


def _webhook(url: str, credentials_file: str | None = None) -> dict:
    hook = {"url": url, "send_resolved": True}
    if credentials_file:
        hook["http_config"] = {"authorization": {"type": "Bearer",
                                                 "credentials_file": credentials_file}}
    return hook


def build_alertmanager(config) -> dict:
    """Alertmanager's configuration as plain data: one route, one receiver that posts to
    Berth's webhook, the operator's webhooks and (when SMTP is configured) e-mail."""
    receiver: dict = {"name": RECEIVER, "webhook_configs": [
        _webhook(config.alert_webhook_url, str(config.alert_webhook_token_file))]}
    receiver["webhook_configs"] += [_webhook(url) for url in config.alert_webhooks]
    if config.smtp_host and config.smtp_to:
        email = {"to": config.smtp_to,
                 "from": config.smtp_from or f"berth@{config.smtp_host}",
                 "smarthost": f"{config.smtp_host}:{config.smtp_port}",
                 "require_tls": bool(config.smtp_require_tls),
                 "send_resolved": True}
        if config.smtp_username:
            email["auth_username"] = config.smtp_username
        if config.smtp_password:
            email["auth_password"] = config.smtp_password
        receiver["email_configs"] = [email]
    return {
        "route": {"receiver": RECEIVER, "group_by": list(GROUP_BY),
                  "group_wait": duration(config.alert_group_wait_s),
                  "group_interval": duration(config.alert_group_interval_s),
                  "repeat_interval": duration(config.alert_repeat_interval_s)},
        "receivers": [receiver],
    }


def render_alertmanager(config) -> str:
    """alertmanager.yml. It may hold the SMTP password: write it with `write_private`."""
    return "# Rendered by Berth (berth monitoring config); edits are overwritten.\n" + \
        yaml.safe_dump(build_alertmanager(config), sort_keys=False, width=1000)


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only from the first byte on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class AlertmanagerError(Exception):
    """Alertmanager could not be reached or refused the request."""


class AlertmanagerClient:
    """The few calls of Alertmanager's API v2 the alerts page makes."""

    def __init__(self, base_url: str, session: requests.Session | None = None,
                 timeout_s: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.http = session or requests.Session()
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, **kwargs):
        try:
            response = self.http.request(method, self.base_url + "/api/v2" + path,
                                         timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise AlertmanagerError(f"Alertmanager at {self.base_url} is unreachable: {exc}")
        if response.status_code >= 400:
            raise AlertmanagerError(
                f"Alertmanager answered {response.status_code}: {response.text[:200]}")
        return response.json() if response.content else None

    def alerts(self, active_only: bool = True) -> list[dict]:
        params = {"active": "true", "silenced": str(not active_only).lower(),
                  "inhibited": str(not active_only).lower()}
        return self._call("GET", "/alerts", params=params) or []

    def silences(self) -> list[dict]:
        return self._call("GET", "/silences") or []

    def create_silence(self, labels: dict[str, str], hours: float, created_by: str,
                       comment: str, now: datetime | None = None) -> str:
        now = now or datetime.now(timezone.utc)
        body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True}
                             for k, v in sorted(labels.items())],
                "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=hours)).isoformat(),
                "createdBy": created_by, "comment": comment}
        return self._call("POST", "/silences", json=body)["silenceID"]

    def expire_silence(self, silence_id: str) -> None:
        self._call("DELETE", f"/silence/{silence_id}")
