"""Users, passwords and personal API tokens."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import timedelta
from functools import cache

from sqlalchemy import bindparam, select
from werkzeug.security import check_password_hash, generate_password_hash

from berth import audit, db
from berth.clock import utcnow
from berth.errors import Conflict, InvalidInput, NotFound
from berth.models import ApiToken, User

USERNAME_RULE = "2-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "berth_"
# werkzeug's default (scrypt) costs ~100 ms a check on purpose; tests lower it.
PASSWORD_HASH_METHOD = "scrypt"


def validate_username(username: str) -> None:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidInput(f"invalid username {username!r}: {USERNAME_RULE}")


def validate_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def create_user(username: str, password: str, *, is_admin: bool = False,
                actor: str | None = None) -> User:
    validate_username(username)
    validate_password(password)
    if find_user(username) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, password_hash=generate_password_hash(password, PASSWORD_HASH_METHOD),
                is_admin=is_admin)
    db.session.add(user)
    audit.record("user.create", f"created user {username}", subject_type="user",
                 subject=username, actor=actor, is_admin=is_admin)
    return user


def set_password(user: User, password: str, *, actor: str | None = None) -> None:
    """A new password ends every session of the user (a copied cookie included)."""
    validate_password(password)
    user.password_hash = generate_password_hash(password, PASSWORD_HASH_METHOD)
    end_sessions(user)
    audit.record("user.password", f"changed the password of {user.username}",
                 subject_type="user", subject=user.username, actor=actor)


def change_password(user: User, current: str, new: str) -> None:
    """The user's own change: the current password proves it is them, not a stolen session."""
    if not check_password_hash(user.password_hash, current or ""):
        raise WrongPassword("the current password is wrong")
    if current == new:
        raise InvalidInput("the new password must differ from the current one")
    set_password(user, new, actor=user.username)


class WrongPassword(InvalidInput):
    """A failed password check the caller should count as a failed login."""


def end_sessions(user: User) -> None:
    """Every session cookie issued to the user before now stops working."""
    user.session_version += 1


def set_active(user: User, active: bool, *, actor: str) -> None:
    """Deactivating ends at once the user's sessions, API tokens and registry logins (each
    checks `active`); registry tokens already issued end within their short lifetime."""
    if user.active == active:
        return
    if not active and user.username == actor:
        raise InvalidInput("you cannot deactivate yourself: ask another system administrator")
    user.active = active
    if not active:
        end_sessions(user)
        now = utcnow()
        for token in user.tokens:
            if token.revoked_at is None:
                token.revoked_at = now
    kind = "user.activate" if active else "user.deactivate"
    audit.record(kind, f"{'re' if active else 'de'}activated user {user.username}",
                 subject_type="user", subject=user.username, actor=actor)


def ensure_admin(password: str) -> tuple[User, bool]:
    """Create the `admin` system administrator unless it exists. Returns (user, created)."""
    user = find_user("admin")
    if user is not None:
        return user, False
    return create_user("admin", password, is_admin=True, actor="bootstrap"), True


class _VerifiedCredentials:
    """Remembers recent successful password checks, so `docker` clients, which send Basic
    credentials with every token request, don't pay a slow hash each time.

    Keyed by an HMAC of username and password under a per-process random key (the
    password itself is never kept). A hit still reads the user: a changed password
    (another hash) or a deactivated user ends it at once."""

    def __init__(self, ttl_s: float = 300.0, max_entries: int = 10_000):
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[int, str, float]] = {}
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str) -> bytes:
        return hmac.digest(self._key, f"{username}\0{password}".encode(), "sha256")

    def get(self, username: str, password: str) -> tuple[int, str] | None:
        entry = self._entries.get(self._digest(username, password))
        if entry is None or entry[2] < time.monotonic():
            return None
        return entry[0], entry[1]

    def put(self, username: str, password: str, user: User) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # crude but bounded; entries are cheap to rebuild
            self._entries[self._digest(username, password)] = (
                user.id, user.password_hash, time.monotonic() + self.ttl_s)


verified_credentials = _VerifiedCredentials()

# The re-read on a cache hit runs for every docker token request with a password: built
# once, it skips SQLAlchemy's per-call statement building (cheaper than session.get here).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def remembered_user(username: str, password: str) -> User | None:
    """The user when this very password was verified recently and still holds, without a
    password check: such a client has proven itself, so a lockout need not stop it."""
    remembered = verified_credentials.get(username, password)
    if remembered is not None:
        user = db.session.execute(_USER_BY_ID, {"user_id": remembered[0]}).scalar_one_or_none()
        if (user is not None and user.active and user.username == username
                and user.password_hash == remembered[1]):
            return user
    return None


def authenticate(username: str, password: str) -> User | None:
    user = remembered_user(username, password)
    if user is not None:
        return user
    user = find_user(username)
    if user is None or not user.active:
        # Spend the same time as a real check so timing does not reveal which users exist.
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    verified_credentials.put(username, password, user)
    return user


def _token_digest(token: str) -> str:
    # API tokens are long random strings, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str, lifetime_days: int | None = 90) -> tuple[ApiToken, str]:
    """Returns the record and the token itself, which is shown once and never stored.
    `lifetime_days` None or 0: the token never expires."""
    if not name or len(name) > 64:
        raise InvalidInput("token name must be 1-64 characters")
    if lifetime_days is not None and not 0 <= lifetime_days <= 3650:
        raise InvalidInput("token lifetime must be 1-3650 days (0: never expires)")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=lifetime_days) if lifetime_days else None
    token = ApiToken(user=user, name=name, token_hash=_token_digest(secret), expires_at=expires_at)
    db.session.add(token)
    audit.record("token.create", f"created API token {name}", subject_type="user",
                 subject=user.username, actor=user.username)
    return token, secret


def authenticate_token(secret: str) -> User | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(secret)))
    now = utcnow()
    if token is None or token.state(now) != "active" or not token.user.active:
        return None
    token.last_used_at = now
    return token.user


def tokens_of(user: User) -> list[ApiToken]:
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())))


def find_token(user: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"{user.username} has no API token with id {token_id}")
    return token


def revoke_api_token(token: ApiToken, *, actor: str) -> None:
    if token.revoked_at is not None:
        return  # revoking twice is not an error, and keeps the first time
    token.revoked_at = utcnow()
    audit.record("token.revoke", f"revoked API token {token.name}", subject_type="user",
                 subject=token.user.username, actor=actor)


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16), PASSWORD_HASH_METHOD)
