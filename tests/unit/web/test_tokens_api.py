"""The API for one's own tokens and password, and a system admin's revocation and deactivation."""
from dataclasses import replace
from datetime import timedelta

import pytest
from limits import parse

from berth import db
from berth.clock import utcnow
from berth.models import ApiToken, Event
from tests.support import basic_auth

ALICE = basic_auth("alice", "alice-password")
BOB = basic_auth("bob", "bob-password")


@pytest.fixture
def people(client, admin):
    for name in ("alice", "bob"):
        assert client.post("/api/v1/users", json={"username": name, "password": f"{name}-password"},
                           headers=admin).status_code == 201
    return client


def new_token(client, headers=ALICE, **body):
    response = client.post("/api/v1/tokens", json={"name": "ci", **body}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def test_a_new_token_expires_after_the_configured_lifetime(people, app):
    app.config["BERTH"] = replace(app.config["BERTH"], api_token_lifetime_days=7)
    created = new_token(people)
    assert created["token"].startswith("berth_") and created["state"] == "active"
    with app.app_context():
        token = db.session.get(ApiToken, created["id"])
        assert abs(token.expires_at - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)


def test_a_shorter_lifetime_may_be_asked_for_but_not_a_longer_one(people, app):
    short = new_token(people, lifetime_days=1)
    with app.app_context():
        token = db.session.get(ApiToken, short["id"])
        assert token.expires_at - utcnow() < timedelta(days=1, minutes=1)
    response = people.post("/api/v1/tokens", json={"name": "long", "lifetime_days": 91},
                           headers=ALICE)
    assert response.status_code == 400
    assert "lifetime_days must be 1-90" in response.json["error"]


def test_listing_shows_own_tokens_without_secrets(people):
    created = new_token(people)
    new_token(people, headers=BOB)
    response = people.get("/api/v1/tokens", headers=ALICE)
    assert response.status_code == 200
    [listed] = response.json
    assert listed["id"] == created["id"] and listed["name"] == "ci"
    assert set(listed) == {"id", "name", "state", "created_at", "expires_at", "last_used_at",
                           "revoked_at"}
    assert created["token"] not in response.text
    # RFC 3339, as the OpenAPI document's date-time says: the offset is part of it.
    assert listed["created_at"].endswith("+00:00") and listed["expires_at"].endswith("+00:00")
    # Listing with the token itself records its use.
    used = people.get("/api/v1/tokens", headers=basic_auth("alice", created["token"])).json
    assert used[0]["last_used_at"] is not None


def test_a_revoked_token_is_refused_at_once_and_audited(people, app):
    created = new_token(people)
    with_token = basic_auth("alice", created["token"])
    assert people.get("/api/v1/me", headers=with_token).status_code == 200
    assert people.delete(f"/api/v1/tokens/{created['id']}", headers=with_token).status_code == 204
    refused = people.get("/api/v1/me", headers=with_token)
    assert refused.status_code == 401 and refused.json["error"]
    assert people.get("/api/v1/tokens", headers=ALICE).json[0]["state"] == "revoked"
    # Twice is not an error.
    assert people.delete(f"/api/v1/tokens/{created['id']}", headers=ALICE).status_code == 204
    with app.app_context():
        events = db.session.query(Event).filter_by(kind="token.revoke").all()
        assert [(e.actor, e.subject) for e in events] == [("alice", "alice")]


def test_someone_elses_token_is_not_found(people):
    created = new_token(people, headers=BOB)
    response = people.delete(f"/api/v1/tokens/{created['id']}", headers=ALICE)
    assert response.status_code == 404
    assert response.json == {"error": f"alice has no API token with id {created['id']}",
                             "detail": None}


def test_anonymous_callers_get_a_401_with_a_challenge(people):
    response = people.get("/api/v1/tokens")
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    assert set(response.json) == {"error", "detail"}


def test_a_system_admin_lists_and_revokes_a_users_tokens(people, admin, app):
    created = new_token(people)
    listed = people.get("/api/v1/users/alice/tokens", headers=admin)
    assert listed.status_code == 200 and [t["id"] for t in listed.json] == [created["id"]]
    assert people.delete(f"/api/v1/users/alice/tokens/{created['id']}",
                         headers=admin).status_code == 204
    assert people.get("/api/v1/me", headers=basic_auth("alice", created["token"])).status_code == 401
    with app.app_context():
        event = db.session.query(Event).filter_by(kind="token.revoke").one()
        assert (event.actor, event.subject) == ("admin", "alice")


def test_only_system_admins_see_others_tokens(people):
    new_token(people)
    assert people.get("/api/v1/users/alice/tokens", headers=BOB).status_code == 403
    assert people.get("/api/v1/users/nobody/tokens", headers=ALICE).status_code == 403


def test_unknown_user_or_token_is_a_404(people, admin):
    assert people.get("/api/v1/users/nobody/tokens", headers=admin).status_code == 404
    assert people.delete("/api/v1/users/alice/tokens/999", headers=admin).status_code == 404


def test_password_change_needs_the_current_password(people):
    wrong = people.post("/api/v1/users/me/password", headers=ALICE,
                        json={"current_password": "guess-guess", "new_password": "new-password"})
    assert wrong.status_code == 400 and wrong.json["error"] == "the current password is wrong"
    short = people.post("/api/v1/users/me/password", headers=ALICE,
                        json={"current_password": "alice-password", "new_password": "short"})
    assert short.status_code == 400 and "at least 8" in short.json["error"]
    missing = people.post("/api/v1/users/me/password", headers=ALICE, json={})
    assert missing.status_code == 400 and "new_password" in missing.json["error"]
    changed = people.post("/api/v1/users/me/password", headers=ALICE,
                          json={"current_password": "alice-password", "new_password": "new-password"})
    assert changed.status_code == 204
    assert people.get("/api/v1/me", headers=ALICE).status_code == 401
    assert people.get("/api/v1/me", headers=basic_auth("alice", "new-password")).status_code == 200


def test_a_system_admin_deactivates_and_reactivates_a_user(people, admin):
    created = new_token(people)
    response = people.patch("/api/v1/users/alice", json={"active": False}, headers=admin)
    assert response.status_code == 200 and response.json["active"] is False
    assert people.get("/api/v1/me", headers=ALICE).status_code == 401
    assert people.get("/api/v1/me", headers=basic_auth("alice", created["token"])).status_code == 401
    assert people.get("/api/v1/users/alice", headers=admin).json["active"] is False
    assert people.patch("/api/v1/users/alice", json={"active": True}, headers=admin).json["active"]
    assert people.get("/api/v1/me", headers=ALICE).status_code == 200
    # Deactivation revoked the token for good; reactivation gives the password back only.
    assert people.get("/api/v1/me", headers=basic_auth("alice", created["token"])).status_code == 401


def test_deactivation_is_for_system_admins_and_not_of_oneself(people, admin):
    assert people.patch("/api/v1/users/bob", json={"active": False}, headers=ALICE).status_code == 403
    myself = people.patch("/api/v1/users/admin", json={"active": False}, headers=admin)
    assert myself.status_code == 400 and "cannot deactivate yourself" in myself.json["error"]
    assert people.patch("/api/v1/users/nobody", json={"active": False}, headers=admin).status_code == 404
    bad = people.patch("/api/v1/users/bob", json={"active": "perhaps"}, headers=admin)
    assert bad.status_code == 400 and "active" in bad.json["error"]


def test_wrong_current_passwords_count_as_failed_logins(people, app):
    app.extensions["berth.login_failures"].per_user = parse("2 per 5 minutes")
    for _ in range(2):
        assert people.post("/api/v1/users/me/password", headers=ALICE, json={
            "current_password": "guess-guess", "new_password": "new-password"}).status_code == 400
    locked = people.post("/api/v1/users/me/password", headers=ALICE, json={
        "current_password": "alice-password", "new_password": "new-password"})
    assert locked.status_code == 429 and "too many failed logins" in locked.json["error"]
    with app.app_context():
        assert db.session.query(Event).filter_by(kind="user.login_failed").count() == 2


def test_audit_times_with_an_offset_mean_that_instant(people, admin):
    new_token(people)
    later = people.get("/api/v1/audit", headers=admin, query_string={
        "kind": "token.create", "since": (utcnow() + timedelta(minutes=30)).isoformat() + "+01:00"})
    assert [e["kind"] for e in later.json] == ["token.create"]  # 30 min ago in UTC
    none = people.get("/api/v1/audit", headers=admin, query_string={
        "kind": "token.create", "since": (utcnow() + timedelta(minutes=30)).isoformat() + "+00:00"})
    assert none.json == []
