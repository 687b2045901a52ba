"""A copied session cookie stops working after logout and after a password change."""
from datetime import timedelta

import pytest

from berth import accounts, db
from berth.clock import utcnow
from berth.models import ApiToken, User
from tests.support import basic_auth, csrf_token_of


def log_in(client, username, password):
    token = csrf_token_of(client.get("/login").text)
    response = client.post("/login", data={"csrf_token": token, "username": username,
                                           "password": password})
    assert response.status_code == 302
    return client.get_cookie("session").value


def copy_with(app, cookie):
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


@pytest.fixture
def viewer(app):
    with app.app_context(), db.unit_of_work():
        accounts.create_user("viewer", "viewer-password")


def test_copied_cookie_stops_working_after_logout(app, client, viewer):
    cookie = log_in(client, "viewer", "viewer-password")
    assert copy_with(app, cookie).get("/api/v1/me").status_code == 200
    token = csrf_token_of(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert copy_with(app, cookie).get("/api/v1/me").status_code == 401


def test_copied_cookie_stops_working_after_a_password_change(app, client, viewer):
    cookie = log_in(client, "viewer", "viewer-password")
    with app.app_context(), db.unit_of_work():
        accounts.set_password(accounts.find_user("viewer"), "another-password", actor="viewer")
    assert copy_with(app, cookie).get("/api/v1/me").status_code == 401


def test_a_deactivated_user_loses_sessions_and_tokens_at_once(app, client, admin, viewer):
    cookie = log_in(client, "viewer", "viewer-password")
    with app.app_context(), db.unit_of_work():
        _, secret = accounts.create_api_token(accounts.find_user("viewer"), "ci")
    assert client.get("/api/v1/me", headers=basic_auth("viewer", secret)).status_code == 200
    with app.app_context(), db.unit_of_work():
        accounts.set_active(accounts.find_user("viewer"), False, actor="admin")
    assert copy_with(app, cookie).get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=basic_auth("viewer", secret)).status_code == 401
    assert client.get("/api/v1/me", headers=basic_auth("viewer", "viewer-password")).status_code == 401
    registry = client.get("/service/token?service=berth-registry",
                          headers=basic_auth("viewer", "viewer-password"))
    assert registry.status_code == 401
    with app.app_context():
        assert all(t.revoked_at is not None for t in db.session.query(ApiToken))


def test_expired_and_revoked_tokens_are_refused(app, client, viewer):
    with app.app_context(), db.unit_of_work():
        user = db.session.query(User).filter_by(username="viewer").one()
        expired, expired_secret = accounts.create_api_token(user, "old", lifetime_days=1)
        revoked, revoked_secret = accounts.create_api_token(user, "gone")
        expired.expires_at = utcnow() - timedelta(seconds=1)  # lapsed
        accounts.revoke_api_token(revoked, actor="viewer")
    for secret in (expired_secret, revoked_secret):
        assert client.get("/api/v1/me", headers=basic_auth("viewer", secret)).status_code == 401
