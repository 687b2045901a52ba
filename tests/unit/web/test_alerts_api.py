"""Alerts through the API: thresholds per service (who may change them, 400s), the webhook
Alertmanager calls (bearer token, idempotent), and who sees which alert."""
from __future__ import annotations

import pytest
import yaml

from berth import db
from berth.models import Service
from berth.models.alerts import AlertNotification
from berth.monitoring import tasks
from tests.support import basic_auth

PATH = "/api/v1/applications/site/services/web/alerts/thresholds"


def _alert(status="firing", fingerprint="f1", starts="2026-12-04T06:00:00.123456789Z",
           labels=None, ends="0001-01-01T00:00:00Z"):
    return {"status": status, "fingerprint": fingerprint, "startsAt": starts, "endsAt": ends,
            "labels": labels or {"alertname": "BerthHostDown", "host": "h1",
                                 "severity": "critical"},
            "annotations": {"summary": "Host h1 is down"}, "generatorURL": "http://x"}


def _payload(*alerts):
    return {"version": "4", "groupKey": "{}:{}", "status": alerts[0]["status"],
            "receiver": "berth", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
            "alerts": list(alerts)}


def _bearer(app):
    return {"Authorization": f"Bearer {app.config['BERTH'].alert_webhook_token}"}


def test_thresholds_start_at_the_defaults_and_change(client, site, admin):
    got = client.get(PATH, headers=admin)
    assert got.status_code == 200
    assert (got.json["p999_s"], got.json["error_ratio"], got.json["custom"]) == (1.0, 0.05, False)
    changed = client.put(PATH, json={"p999_s": 0.25, "error_ratio": 0.01}, headers=admin)
    assert changed.status_code == 200, changed.json
    assert (changed.json["p999_s"], changed.json["error_ratio"], changed.json["custom"]) == \
        (0.25, 0.01, True)
    back = client.put(PATH, json={"p999_s": None, "enabled": False}, headers=admin).json
    assert (back["p999_s"], back["error_ratio"], back["enabled"]) == (1.0, 0.05, False)


@pytest.mark.parametrize("body,field", [
    ({"p999_s": 0}, "p999_s"), ({"p999_s": -1}, "p999_s"), ({"p999_s": "fast"}, "p999_s"),
    ({"error_ratio": 1.5}, "error_ratio"), ({"error_ratio": 0}, "error_ratio"),
    ({"enabled": "maybe"}, "enabled"), ({"speed": 3}, "speed"),
])
def test_bad_thresholds_are_400s(client, site, admin, body, field):
    answer = client.put(PATH, json=body, headers=admin)
    assert answer.status_code == 400 and field in str(answer.json)
    assert client.get(PATH, headers=admin).json["custom"] is False


def test_guests_see_thresholds_but_do_not_change_them(client, site, admin):
    viewer = basic_auth("viewer", "viewer-password")
    assert client.get(PATH, headers=viewer).status_code == 200
    assert client.put(PATH, json={"p999_s": 2}, headers=viewer).status_code == 403


def test_changed_thresholds_reach_the_rules_file(app, site, admin, tmp_path):
    with app.app_context():
        service = db.session.query(Service).filter_by(name="web").one()
        service.metrics = {"port": 8080}
        db.session.commit()
    client = app.test_client()
    assert client.put(PATH, json={"p999_s": 0.3}, headers=admin).status_code == 200
    config = app.config["BERTH"].__class__(**{**app.config["BERTH"].__dict__,
                                              "monitoring_dir": tmp_path / "monitoring"})
    with app.app_context():
        done = tasks.write_rules(db.session, config)
    assert done == {"written": str(tmp_path / "monitoring" / "rules.yml"), "reloaded": False}
    rules = yaml.safe_load((tmp_path / "monitoring" / "rules.yml").read_text())
    p999 = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "BerthServiceP999High"]
    assert len(p999) == 1 and p999[0]["expr"].endswith("> 0.3")
    assert p999[0]["labels"]["application"] == "site"


def test_the_webhook_wants_the_bearer_token(app, client):
    body = _payload(_alert())
    assert client.post("/api/v1/alerts/webhook", json=body).status_code == 401
    wrong = client.post("/api/v1/alerts/webhook", json=body,
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "bearer token" in wrong.json["error"]
    assert client.post("/api/v1/alerts/webhook", json=body,
                       headers=_bearer(app)).json == {"stored": 1}


def test_the_webhook_stores_each_state_once(app, client, admin):
    firing = _payload(_alert())
    for expected in (1, 0):  # Alertmanager resends the group every group_interval
        assert client.post("/api/v1/alerts/webhook", json=firing,
                           headers=_bearer(app)).json == {"stored": expected}
    resolved = _payload(_alert("resolved", ends="2026-12-04T06:05:00Z"))
    assert client.post("/api/v1/alerts/webhook", json=resolved,
                       headers=_bearer(app)).json == {"stored": 1}
    with app.app_context():
        assert db.session.query(AlertNotification).count() == 2
    listed = client.get("/api/v1/alerts", headers=admin).json
    assert listed["firing"] == []
    assert [r["status"] for r in listed["recent"]] == ["resolved", "firing"]
    assert listed["recent"][0]["ends_at"].startswith("2026-12-04T06:05:00")


@pytest.mark.parametrize("body", [
    {"alerts": "no"}, [], {"alerts": [{"status": "odd", "fingerprint": "x",
                                        "startsAt": "2026-12-04T06:00:00Z"}]},
    {"alerts": [{"status": "firing", "fingerprint": "x", "startsAt": "yesterday"}]},
])
def test_a_bad_webhook_payload_is_a_400(app, client, body):
    answer = client.post("/api/v1/alerts/webhook", json=body, headers=_bearer(app))
    assert answer.status_code == 400 and answer.json["error"]


def test_users_see_alerts_about_what_they_may_see(app, client, site, admin):
    from berth import accounts

    with app.app_context(), db.unit_of_work():
        accounts.create_user("stranger", "stranger-password")
    about_site = _alert(fingerprint="s1", labels={"alertname": "BerthServiceFailing",
                                                  "application": "site", "service": "web"})
    about_other = _alert(fingerprint="o1", labels={"alertname": "BerthServiceFailing",
                                                   "application": "secret", "service": "db"})
    client.post("/api/v1/alerts/webhook", json=_payload(about_site, about_other, _alert()),
                headers=_bearer(app))

    def seen(headers):
        return sorted(a["fingerprint"] for a in client.get("/api/v1/alerts",
                                                           headers=headers).json["firing"])
    assert seen(admin) == ["f1", "o1", "s1"]
    assert seen(basic_auth("viewer", "viewer-password")) == ["f1", "s1"]
    assert seen(basic_auth("stranger", "stranger-password")) == ["f1"]
    assert client.get("/api/v1/alerts").status_code == 401
