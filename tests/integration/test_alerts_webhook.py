"""An alert end to end on real parts: a bed dockerd stops, Berth marks its host down and
exports berth_host_up 0, the real Prometheus fires BerthHostDown from the rules Berth
rendered, and the real Alertmanager posts it to the operator's webhook (an HTTP server in
this test) and to Berth's own (stored); when the engine returns, the resolution arrives."""
from __future__ import annotations

import dataclasses
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from berth import db
from berth.models.alerts import AlertNotification
from berth.monitoring.config import write_all
from tests.support import wait_for

pytestmark = pytest.mark.berth_environments("embedded")


class Receiver:
    """An operator's webhook on 127.0.0.1 that keeps every alert it is sent."""

    def __init__(self):
        received = self.alerts = []
        lock = self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    received.extend(body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self, status: str, host: str) -> list[dict]:
        with self.lock:
            return [a for a in self.alerts if a["status"] == status
                    and a["labels"].get("alertname") == "BerthHostDown"
                    and a["labels"].get("host") == host]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    hook = Receiver()
    yield hook
    hook.close()


def diagnosis(monitoring) -> str:
    """What each stage saw, for a failure message."""
    def get(url):
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310
                return answer.read().decode()[:1500]
        except OSError as error:
            return f"{url}: {error}"
    prometheus = monitoring.prometheus_url
    return "\n".join([
        "berth_host_up: " + get(prometheus + "/api/v1/query?query=berth_host_up"),
        "up: " + get(prometheus + "/api/v1/query?query=up"),
        "prometheus alerts: " + get(prometheus + "/api/v1/alerts"),
        "alertmanager alerts: " + get(monitoring.alertmanager_url + "/api/v2/alerts")])


def stored(status: str, host: str) -> bool:
    with db.unit_of_work():
        return any(row.labels.get("host") == host for row in db.session.query(
            AlertNotification).filter_by(alertname="BerthHostDown", status=status))


def test_a_stopped_engine_alerts_and_its_return_resolves(berth_app, bed, fleet, monitoring,
                                                         receiver, database):
    config = dataclasses.replace(
        berth_app.config, prometheus_berth_url=berth_app.url, prometheus_scrape_interval_s=1.0,
        prometheus_evaluation_interval_s=1.0, alertmanager_url=monitoring.alertmanager_url,
        alert_for_s=1.0, alert_group_wait_s=1.0, alert_group_interval_s=1.0,
        alert_repeat_interval_s=3600.0, alert_webhooks=(receiver.url,),
        alert_webhook_url=berth_app.url + "/api/v1/alerts/webhook")
    with db.unit_of_work() as session:
        write_all(session, config, monitoring.dir)
    monitoring.reload()
    urllib.request.urlopen(urllib.request.Request(  # noqa: S310
        monitoring.alertmanager_url + "/-/reload", method="POST"), timeout=10).close()

    liveness_s = (config.probe_failures_for_down + 1) * (
        config.probe_interval_s + config.probe_timeout_s) + 5
    # Scrape, evaluation, `for`, group_wait and Alertmanager's dispatch: a few seconds each
    # (more on a loaded machine).
    alerting_s = liveness_s + 60
    host = "bed-e3"
    wait_for(lambda: monitoring.api('/api/v1/query?query=berth_host_up{host="bed-e3"}')
             ["data"]["result"], 30, "Prometheus to scrape Berth's berth_host_up")
    bed.stop_engine("e3")
    try:
        try:
            firing = wait_for(lambda: receiver.seen("firing", host), alerting_s,
                              "BerthHostDown for bed-e3 at the operator's webhook")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{diagnosis(monitoring)}") from None
        assert firing[0]["labels"]["severity"] == "critical"
        assert "bed-e3 is down" in firing[0]["annotations"]["summary"]
        wait_for(lambda: stored("firing", host), 15, "Berth's webhook to store the alert")
    finally:
        bed.start_engine("e3")
    resolved = wait_for(lambda: receiver.seen("resolved", host), alerting_s,
                        "the resolution of BerthHostDown for bed-e3")
    assert resolved[0]["fingerprint"] == firing[0]["fingerprint"]
    wait_for(lambda: stored("resolved", host), 15, "Berth's webhook to store the resolution")


def test_the_client_creates_lists_and_expires_silences(monitoring):
    from berth.monitoring.alertmanager import AlertmanagerClient

    client = AlertmanagerClient(monitoring.alertmanager_url)
    labels = {"alertname": "BerthHostDown", "host": "bed-e9"}
    silence_id = client.create_silence(labels, 2, created_by="it", comment="integration test")

    def state():
        found = [s for s in client.silences() if s["id"] == silence_id]
        return found[0]["status"]["state"] if found else None
    assert state() == "active"
    assert {m["name"]: m["value"] for m in next(
        s for s in client.silences() if s["id"] == silence_id)["matchers"]} == labels
    client.expire_silence(silence_id)
    wait_for(lambda: state() == "expired", 10, "the silence to expire")
    assert isinstance(client.alerts(), list)
