"""Re-render rules.yml when thresholds change, and have Prometheus reload it."""
from __future__ import annotations

import logging

import requests

from berth import db
from berth.celery_app import celery, settings
from berth.monitoring.alertmanager import write_private
from berth.monitoring.rules import render_rules as render

log = logging.getLogger(__name__)


def write_rules(session, config) -> dict:
    """rules.yml into the monitoring folder, then POST Prometheus' /-/reload (when known)."""
    if config.monitoring_dir is None:
        return {"written": None, "reloaded": False}
    text = render(session, config)
    session.close()  # no connection held while Prometheus reloads
    target = config.monitoring_dir / "rules.yml"
    write_private(target, text)
    reloaded = False
    if config.prometheus_url:
        try:
            requests.post(config.prometheus_url + "/-/reload", timeout=10).raise_for_status()
            reloaded = True
        except requests.RequestException as exc:  # it reads the file on its next start
            log.warning("Prometheus at %s did not reload its rules: %s",
                        config.prometheus_url, exc)
    return {"written": str(target), "reloaded": reloaded}


@celery.task(name="berth.monitoring.tasks.render_rules")
def render_rules() -> dict:
    return write_rules(db.session, settings())
