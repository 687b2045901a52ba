import pytest

from berth import accounts, db
from berth.errors import Conflict, InvalidInput
from berth.models import Event


@pytest.mark.parametrize("username", ["", "a", "Alice", "has space", "-dash", "x" * 65])
def test_bad_usernames_are_refused_with_the_rule(database, username):
    with pytest.raises(InvalidInput, match="lowercase letters"):
        accounts.create_user(username, "long-enough")


def test_short_password_is_refused(database):
    with pytest.raises(InvalidInput, match="at least 8"):
        accounts.create_user("alice", "short")


def test_password_is_hashed_and_checked(database):
    user = accounts.create_user("alice", "correct-horse")
    db.session.commit()
    assert "correct-horse" not in user.password_hash
    assert accounts.authenticate("alice", "correct-horse") is user
    assert accounts.authenticate("alice", "wrong-horse!") is None
    assert accounts.authenticate("nobody", "correct-horse") is None


def test_duplicate_user_conflicts(database):
    accounts.create_user("alice", "correct-horse")
    with pytest.raises(Conflict):
        accounts.create_user("alice", "correct-horse")


def test_ensure_admin_is_idempotent(database):
    first, created = accounts.ensure_admin("admin-password")
    db.session.commit()
    again, created_again = accounts.ensure_admin("other-password")
    assert created and not created_again and again.id == first.id and first.is_admin
    assert accounts.authenticate("admin", "admin-password") is first


def test_api_token_is_shown_once_stored_hashed_and_revocable(database):
    user = accounts.create_user("alice", "correct-horse")
    token, secret = accounts.create_api_token(user, "ci")
    db.session.commit()
    assert secret not in token.token_hash and secret.startswith("berth_")
    assert accounts.authenticate_token(secret) is user
    accounts.revoke_api_token(token, actor="alice")
    assert accounts.authenticate_token(secret) is None
    assert accounts.authenticate_token("berth_not-a-token") is None


def test_user_creation_is_audited(database):
    accounts.create_user("alice", "correct-horse", actor="admin")
    db.session.commit()
    event = db.session.query(Event).filter_by(kind="user.create").one()
    assert event.actor == "admin" and event.subject == "alice"


def test_remembered_credentials_end_when_the_password_changes(database):
    user = accounts.create_user("alice", "correct-horse")
    db.session.commit()
    assert accounts.authenticate("alice", "correct-horse") is user  # now remembered
    assert accounts.authenticate("alice", "correct-horse") is user
    accounts.set_password(user, "battery-staple")
    db.session.commit()
    assert accounts.authenticate("alice", "correct-horse") is None
    assert accounts.authenticate("alice", "battery-staple") is user


def test_remembered_credentials_end_when_the_user_is_deactivated(database):
    user = accounts.create_user("alice", "correct-horse")
    db.session.commit()
    assert accounts.authenticate("alice", "correct-horse") is user
    user.active = False
    db.session.commit()
    assert accounts.authenticate("alice", "correct-horse") is None
