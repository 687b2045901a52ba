"""The alerts page: what fires and what fired (only about what the user may see), silences
through Alertmanager, and the thresholds form the service page includes."""
from __future__ import annotations


from flask import render_template_string

from berth import db
from berth.monitoring import alerts
from berth.monitoring.alertmanager import AlertmanagerError
from berth.workloads import services as workloads
from tests.support import csrf_token_of, login

SITE = {"alertname": "BerthServiceFailing", "application": "site", "service": "web",
        "severity": "critical"}
SECRET = {"alertname": "BerthServiceFailing", "application": "secret", "service": "db",
          "severity": "critical"}


def _store(app, *alerts_):
    with app.app_context(), db.unit_of_work():
        alerts.store_webhook(db.session, {"alerts": [
            {"status": status, "fingerprint": fp, "labels": labels,
             "annotations": {"summary": f"{labels['application']} is failing"},
             "startsAt": "2026-12-04T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
            for fp, status, labels in alerts_]})


class FakeAlertmanager:
    def __init__(self):
        self.silenced, self.expired = [], []
        self.fail = False

    def silences(self):
        if self.fail:
            raise AlertmanagerError("Alertmanager at http://127.0.0.1:9 is unreachable")
        return [{"id": "s1", "status": {"state": "active"}, "createdBy": "admin",
                 "endsAt": "2026-12-04T08:00:00Z",
                 "matchers": [{"name": k, "value": v} for k, v in labels.items()]}
                for labels, _hours in self.silenced]

    def create_silence(self, labels, hours, created_by, comment):
        self.silenced.append((labels, hours))
        return "s1"

    def expire_silence(self, silence_id):
        self.expired.append(silence_id)


def _with_alertmanager(app, monkeypatch):
    fake = FakeAlertmanager()
    monkeypatch.setattr("web.alerts.alertmanager", lambda: fake)
    return fake


def test_the_page_shows_firing_and_recent_alerts_the_user_may_see(app, client, site):
    _store(app, ("a", "firing", SITE), ("b", "firing", SECRET))
    login(client, "admin", "admin-password")
    page = client.get("/alerts/").text
    assert "site/web" in page and "secret/db" in page and "Alerts</a>" in page
    client.get("/logout")
    login(client, "viewer", "viewer-password")
    page = client.get("/alerts/").text
    assert "site/web" in page and "secret/db" not in page
    assert "Silence" not in page  # no Alertmanager configured


def test_a_resolved_alert_leaves_firing_but_stays_in_recent(app, client, site):
    _store(app, ("a", "firing", SITE))
    _store(app, ("a", "resolved", SITE))
    login(client, "admin", "admin-password")
    page = client.get("/alerts/").text
    firing = page.split('id="firing"')[1].split("</table>")[0]
    assert "Nothing fires." in firing
    assert page.count("BerthServiceFailing") == 2  # both states, under "Lately"


def test_the_login_is_required(client):
    assert client.get("/alerts/").status_code in (302, 401)


def test_operators_silence_and_expire(app, client, site, monkeypatch):
    fake = _with_alertmanager(app, monkeypatch)
    _store(app, ("a", "firing", SITE))
    login(client, "admin", "admin-password")
    token = csrf_token_of(client.get("/alerts/").text)
    page = client.post("/alerts/silences", data={"csrf_token": token, "fingerprint": "a",
                                                 "hours": "3"}, follow_redirects=True).text
    assert "silenced for 3 h" in page
    assert fake.silenced == [(SITE, 3)]
    assert 'application="site"' in page
    page = client.post("/alerts/silences/s1/expire", data={"csrf_token": token},
                       follow_redirects=True).text
    assert "Silence expired." in page and fake.expired == ["s1"]


def test_bad_hours_and_guests_are_refused(app, client, site, monkeypatch):
    fake = _with_alertmanager(app, monkeypatch)
    _store(app, ("a", "firing", SITE))
    login(client, "viewer", "viewer-password")
    token = csrf_token_of(client.get("/alerts/").text)
    refused = client.post("/alerts/silences", data={"csrf_token": token, "fingerprint": "a",
                                                    "hours": "2"})
    assert refused.status_code == 403 and fake.silenced == []
    client.get("/logout")
    login(client, "admin", "admin-password")
    token = csrf_token_of(client.get("/alerts/").text)
    page = client.post("/alerts/silences", data={"csrf_token": token, "fingerprint": "a",
                                                 "hours": "0"}, follow_redirects=True).text
    assert "whole hours" in page and fake.silenced == []


def test_an_unreachable_alertmanager_is_said_not_a_500(app, client, site, monkeypatch):
    _with_alertmanager(app, monkeypatch).fail = True
    login(client, "admin", "admin-password")
    answer = client.get("/alerts/")
    assert answer.status_code == 200 and "unreachable" in answer.text


def _thresholds_html(app, user):
    with app.test_request_context():
        from flask_login import login_user

        login_user(user)
        service = workloads.get_service("site", "web")
        return render_template_string(
            '{% include "alerts/_thresholds.html" %}', service=service)


def test_the_thresholds_partial_and_its_form(app, client, site):
    with app.app_context():
        from berth.models import User
        admin = db.session.query(User).filter_by(username="admin").one()
        viewer = db.session.query(User).filter_by(username="viewer").one()
        html = _thresholds_html(app, admin)
        assert "Save thresholds" in html and "P999 above 1.0 s" in html
        assert "Save thresholds" not in _thresholds_html(app, viewer)
    login(client, "admin", "admin-password")
    token = csrf_token_of(client.get("/alerts/").text)
    page = client.post("/alerts/thresholds/site/web", data={
        "csrf_token": token, "p999_s": "0.5", "error_percent": "2", "enabled": "y"},
        follow_redirects=True)
    assert "Alert thresholds saved" in page.text
    assert 'id="alert-thresholds"' in client.get("/services/site/web").text
    with app.app_context():
        current = alerts.thresholds(db.session, workloads.get_service("site", "web"),
                                    app.config["BERTH"])
    assert (current["p999_s"], current["error_ratio"], current["enabled"]) == (0.5, 0.02, True)
    bad = client.post("/alerts/thresholds/site/web", data={
        "csrf_token": token, "p999_s": "-1"}, follow_redirects=True)
    assert "Alert thresholds not changed" in bad.text


def test_guests_cannot_post_thresholds(app, client, site):
    login(client, "viewer", "viewer-password")
    token = csrf_token_of(client.get("/alerts/").text)
    answer = client.post("/alerts/thresholds/site/web", data={"csrf_token": token,
                                                              "p999_s": "2"})
    assert answer.status_code == 403
