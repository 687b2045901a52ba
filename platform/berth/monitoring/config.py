"""prometheus.yml as Berth renders it: scrape Berth's own /metrics, discover the services'
targets through Berth (http_sd, authenticated with a system identity's API token), load
Berth's alert rules, and send alerts to Alertmanager. Pure: settings in, text out; and
`write_all`, which `berth monitoring config --out DIR` runs.
"""
from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from berth.monitoring.rules import duration

TOKEN_FILE = "berth-token"  # the credentials Prometheus sends to Berth (0600)
SYSTEM_USER = "berth-prometheus"  # the system identity whose API token Prometheus uses
TOKEN_NAME = "prometheus"
TARGETS_PATH = "/api/v1/monitoring/targets"


def build_prometheus(*, berth_url: str, token_file: str, scrape_interval_s: float,
                     evaluation_interval_s: float, alertmanager: str | None,
                     rule_files: list[str] = ("rules.yml",)) -> dict:
    berth = urlsplit(berth_url)
    interval = duration(scrape_interval_s)
    # Basic with the token as password: the API's own authentication (web.auth).
    authorization = {"type": "Basic", "credentials_file": token_file}
    out: dict = {
        "global": {"scrape_interval": interval,
                   "scrape_timeout": duration(min(scrape_interval_s, 10.0)),
                   "evaluation_interval": duration(evaluation_interval_s)},
        "rule_files": list(rule_files),
        "scrape_configs": [
            {"job_name": "berth", "scheme": berth.scheme or "http",
             "metrics_path": "/metrics",
             # Berth's series carry their own `instance` (a container) and `host` labels.
             "honor_labels": True,
             "static_configs": [{"targets": [berth.netloc]}]},
            {"job_name": "berth-services",
             "http_sd_configs": [{"url": berth_url.rstrip("/") + TARGETS_PATH,
                                  "refresh_interval": interval,
                                  "authorization": dict(authorization)}]},
        ],
    }
    if alertmanager:
        out["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": [urlsplit(alertmanager).netloc or alertmanager]}]}]}
    return out


def render_prometheus(config, token_file: str) -> str:
    text = yaml.safe_dump(build_prometheus(
        berth_url=config.prometheus_berth_url, token_file=token_file,
        scrape_interval_s=config.prometheus_scrape_interval_s,
        evaluation_interval_s=config.prometheus_evaluation_interval_s,
        alertmanager=config.alertmanager_url), sort_keys=False, width=1000)
    return "# Rendered by Berth (berth monitoring config); edits are overwritten.\n" + text


def credentials(username: str, token: str) -> str:
    """What the token file holds: HTTP Basic credentials, the token as the password."""
    return base64.b64encode(f"{username}:{token}".encode()).decode()


def mint_token() -> tuple[str, str]:
    """(username, token) for Prometheus: the system identity (a system admin that nobody
    logs in as: its password is random and never shown) and a fresh non-expiring API token;
    its earlier ones are revoked. Call inside a unit of work."""
    import secrets

    from berth import accounts

    user = accounts.find_user(SYSTEM_USER)
    if user is None:
        user = accounts.create_user(SYSTEM_USER, secrets.token_urlsafe(32), is_admin=True,
                                    actor="berth")
    for old in accounts.tokens_of(user):
        if old.name == TOKEN_NAME:
            accounts.revoke_api_token(old, actor="berth")
    _record, token = accounts.create_api_token(user, TOKEN_NAME, lifetime_days=None)
    return user.username, token


def write_all(session, config, out: Path) -> list[Path]:
    """prometheus.yml, the token file, rules.yml and alertmanager.yml into `out`."""
    from berth.monitoring.alertmanager import render_alertmanager, write_private
    from berth.monitoring.rules import render_rules

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    username, token = mint_token()
    token_path = out / TOKEN_FILE
    write_private(token_path, credentials(username, token))
    written = [token_path]
    for name, text in (("prometheus.yml", render_prometheus(config, str(token_path.resolve()))),
                       ("rules.yml", render_rules(session, config)),
                       ("alertmanager.yml", render_alertmanager(config))):
        path = out / name
        write_private(path, text)
        written.append(path)
    return written
