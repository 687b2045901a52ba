"""Tearing an application down from the web UI and the API: who may, and what it answers."""
from __future__ import annotations

import pytest

from berth import accounts, db
from berth.models import Application, Membership
from berth.workloads import definitions
from berth.workloads import services as workloads
from tests.support import basic_auth, csrf_token_of, login

IMAGE = "127.0.0.1:5000/library/busybox:1"


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr(workloads, "enqueue", lambda task, *args: sent.append((task.name, args)))
    return sent


@pytest.fixture
def shop(app, admin):
    with app.app_context(), db.unit_of_work():
        application = definitions.create_application({"name": "shop", "services": [
            {"name": "db", "image": IMAGE},
            {"name": "api", "image": IMAGE, "depends_on": {"db": "healthy"}}]}, actor="admin")
        viewer = accounts.create_user("viewer", "viewer-password")
        db.session.flush()  # a guest of shop's project: sees it, may not tear it down
        db.session.add(Membership(project=application.project, user_id=viewer.id, role="guest"))
    return "shop"


def deleting_since(app):
    with app.app_context():
        found = definitions.find_application("shop")
        return found and found.deleting_since


def test_an_admin_tears_down_from_the_services_page(app, client, shop, enqueued):
    login(client, "admin", "admin-password")
    page = client.get("/services/").text
    assert "Tear down" in page and "dependents first" in page
    response = client.post("/services/shop/teardown", data={"csrf_token": csrf_token_of(page)})
    assert response.status_code == 302
    assert deleting_since(app) is not None
    assert [name for name, _args in enqueued] == ["berth.workloads.tasks.deploy_application"]
    page = client.get("/services/").text
    assert "being torn down" in page and "Tear down</button>" not in page


def test_a_post_without_csrf_changes_nothing(app, client, shop, enqueued):
    login(client, "admin", "admin-password")
    client.post("/services/shop/teardown", data={})
    assert deleting_since(app) is None and enqueued == []


def test_a_non_admin_sees_no_control_and_is_refused(app, client, shop, enqueued):
    token = login(client, "viewer", "viewer-password")
    assert "Tear down" not in client.get("/services/").text
    assert client.post("/services/shop/teardown", data={"csrf_token": token}).status_code == 403
    assert deleting_since(app) is None


def test_the_api_answers_202_then_refuses_scaling(app, client, shop, admin, enqueued):
    response = client.delete("/api/v1/applications/shop", headers=admin)
    assert response.status_code == 202 and response.json["deleting_since"]
    again = client.delete("/api/v1/applications/shop", headers=admin)
    assert again.status_code == 202 and again.json["deleting_since"] == response.json["deleting_since"]
    scale = client.patch("/api/v1/applications/shop/services/api", json={"replicas": 3},
                         headers=admin)
    assert scale.status_code == 409 and "torn down" in scale.json["error"]
    assert client.delete("/api/v1/applications/nope", headers=admin).status_code == 404
    viewer = basic_auth("viewer", "viewer-password")
    with app.app_context():
        assert db.session.query(Application).count() == 1
    assert client.delete("/api/v1/applications/shop", headers=viewer).status_code == 403
