"""The account page (password, own API tokens) and the system admins' users page."""
import re

import pytest
from limits import parse

from berth import accounts, db
from berth.models import ApiToken, Event
from tests.support import basic_auth, csrf_token_of, login


@pytest.fixture
def alice(app, admin):
    with app.app_context(), db.unit_of_work():
        accounts.create_user("alice", "alice-password")
        accounts.create_user("bob", "bob-password")


@pytest.fixture
def alice_client(app, alice):
    client = app.test_client()
    client.token = login(client, "alice", "alice-password")
    return client


@pytest.fixture
def admin_client(app, alice):
    client = app.test_client()
    client.token = login(client, "admin", "admin-password")
    return client


def post(client, url, **data):
    return client.post(url, data={"csrf_token": client.token, **data})


def no_inline_code(page: str) -> bool:
    # The Content-Security-Policy refuses inline scripts, handlers and style attributes.
    return (not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page
            and "<style" not in page and not re.search(r"\son[a-z]+=", page))


def test_the_navigation_links_the_account_page(alice_client):
    page = alice_client.get("/").text
    assert 'href="/account"' in page
    assert 'href="/users/"' not in page  # system admins only


def test_the_account_page_lists_tokens_without_secrets(app, alice_client):
    with app.app_context(), db.unit_of_work():
        _, secret = accounts.create_api_token(accounts.find_user("alice"), "laptop")
    page = alice_client.get("/account")
    assert page.status_code == 200
    assert "laptop" in page.text and secret not in page.text
    assert "Change password" in page.text and no_inline_code(page.text)


def test_a_new_token_is_shown_once_and_works(app, alice_client):
    response = post(alice_client, "/account/tokens", name="ci")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    secret = re.search(r"(berth_[A-Za-z0-9_-]+)", response.text).group(1)
    assert app.test_client().get("/api/v1/me", headers=basic_auth("alice", secret)).status_code == 200
    assert secret not in alice_client.get("/account").text
    with app.app_context():
        token = db.session.query(ApiToken).one()
        assert token.expires_at is not None  # the configured 90 days


def test_a_token_lifetime_beyond_the_configured_one_is_refused(alice_client):
    response = post(alice_client, "/account/tokens", name="forever", lifetime_days="3650")
    assert response.status_code == 400 and "at most 90 days" in response.text


def test_a_nameless_token_is_refused_with_the_reason(alice_client):
    response = post(alice_client, "/account/tokens", name="")
    assert response.status_code == 400 and "This field is required" in response.text


def test_revoking_a_token_refuses_it_at_once(app, alice_client):
    with app.app_context(), db.unit_of_work():
        token, secret = accounts.create_api_token(accounts.find_user("alice"), "laptop")
        db.session.flush()
        token_id = token.id
    response = post(alice_client, f"/account/tokens/{token_id}/revoke")
    assert response.status_code == 302
    assert "is revoked" in alice_client.get("/account").text
    assert app.test_client().get("/api/v1/me", headers=basic_auth("alice", secret)).status_code == 401
    with app.app_context():
        assert db.session.query(Event).filter_by(kind="token.revoke").one().actor == "alice"


def test_nobody_revokes_someone_elses_token_from_the_account_page(app, alice_client):
    with app.app_context(), db.unit_of_work():
        token, _ = accounts.create_api_token(accounts.find_user("bob"), "bobs")
        db.session.flush()
        token_id = token.id
    assert post(alice_client, f"/account/tokens/{token_id}/revoke").status_code == 404


def test_posts_without_the_csrf_token_are_refused(alice_client):
    response = alice_client.post("/account/password", data={
        "current_password": "alice-password", "new_password": "new-password",
        "confirm": "new-password"})
    assert response.status_code == 400


def test_changing_the_password_keeps_this_session_and_ends_the_others(app, alice_client):
    other = app.test_client()
    login(other, "alice", "alice-password")
    response = post(alice_client, "/account/password", current_password="alice-password",
                    new_password="new-password", confirm="new-password")
    assert response.status_code == 302
    assert "Your password is changed" in alice_client.get("/account").text
    assert other.get("/account").status_code == 302  # to the login page
    assert app.test_client().get("/api/v1/me", headers=basic_auth(
        "alice", "new-password")).status_code == 200


@pytest.mark.parametrize("current, new, confirm, message", [
    ("wrong-password", "new-password", "new-password", "the current password is wrong"),
    ("alice-password", "short", "short", "at least 8 characters"),
    ("alice-password", "new-password", "other-password", "the two new passwords differ"),
    ("alice-password", "alice-password", "alice-password", "must differ from the current one"),
])
def test_a_refused_password_change_says_why(alice_client, current, new, confirm, message):
    response = post(alice_client, "/account/password", current_password=current,
                    new_password=new, confirm=confirm)
    assert response.status_code == 400 and message in response.text
    assert alice_client.get("/account").status_code == 200  # still logged in


def test_the_users_page_is_for_system_admins(alice_client, admin_client):
    assert alice_client.get("/users/").status_code == 403
    assert post(alice_client, "/users/bob/active", active="false").status_code == 403
    page = admin_client.get("/users/")
    assert page.status_code == 200 and "alice" in page.text and no_inline_code(page.text)
    assert 'href="/users/"' in admin_client.get("/").text


def test_an_admin_deactivates_and_reactivates_a_user(app, admin_client, alice_client):
    with app.app_context(), db.unit_of_work():
        _, secret = accounts.create_api_token(accounts.find_user("alice"), "laptop")
    response = post(admin_client, "/users/alice/active", active="false")
    assert response.status_code == 302
    assert "alice is deactivated" in admin_client.get("/users/").text
    assert alice_client.get("/account").status_code == 302  # her session ended
    assert app.test_client().get("/api/v1/me", headers=basic_auth("alice", secret)).status_code == 401
    assert post(admin_client, "/users/alice/active", active="true").status_code == 302
    assert app.test_client().get("/api/v1/me", headers=basic_auth(
        "alice", "alice-password")).status_code == 200
    with app.app_context():
        kinds = [e.kind for e in db.session.query(Event).filter(Event.kind.like("user.%activate"))]
        assert kinds == ["user.deactivate", "user.activate"]


def test_an_admin_cannot_deactivate_themselves(admin_client):
    post(admin_client, "/users/admin/active", active="false")
    assert "you cannot deactivate yourself" in admin_client.get("/users/").text


def test_an_admin_revokes_a_users_token(app, admin_client):
    with app.app_context(), db.unit_of_work():
        token, secret = accounts.create_api_token(accounts.find_user("alice"), "laptop")
        db.session.flush()
        token_id = token.id
    page = admin_client.get("/users/alice")
    assert page.status_code == 200 and "laptop" in page.text and secret not in page.text
    assert post(admin_client, f"/users/alice/tokens/{token_id}/revoke").status_code == 302
    assert app.test_client().get("/api/v1/me", headers=basic_auth("alice", secret)).status_code == 401
    assert admin_client.get("/users/nobody").status_code == 404


def test_wrong_current_passwords_lock_the_password_form_too(app, alice_client):
    app.extensions["berth.login_failures"].per_user = parse("1 per 5 minutes")
    post(alice_client, "/account/password", current_password="wrong-password",
         new_password="new-password", confirm="new-password")
    locked = post(alice_client, "/account/password", current_password="alice-password",
                  new_password="new-password", confirm="new-password")
    assert locked.status_code == 429 and "too many failed logins" in locked.text
