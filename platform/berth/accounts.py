"""Users, passwords and personal API tokens."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from functools import cache

from sqlalchemy import bindparam, select
from werkzeug.security import check_password_hash, generate_password_hash

from berth import audit, db
from berth.clock import utcnow
from berth.errors import Conflict, InvalidInput
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
    validate_password(password)
    user.password_hash = generate_password_hash(password, PASSWORD_HASH_METHOD)
    audit.record("user.password", f"changed the password of {user.username}",
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


def authenticate(username: str, password: str) -> User | None:
    remembered = verified_credentials.get(username, password)
    if remembered is not None:
        user = db.session.execute(_USER_BY_ID, {"user_id": remembered[0]}).scalar_one_or_none()
        if (user is not None and user.active and user.username == username
                and user.password_hash == remembered[1]):
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


def create_api_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Returns the record and the token itself, which is shown once and never stored."""
    if not name or len(name) > 64:
        raise InvalidInput("token name must be 1-64 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=_token_digest(secret))
    db.session.add(token)
    audit.record("token.create", f"created API token {name}", subject_type="user",
                 subject=user.username, actor=user.username)
    return token, secret


def authenticate_token(secret: str) -> User | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(secret)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    token.last_used_at = utcnow()
    return token.user


def revoke_api_token(token: ApiToken, *, actor: str) -> None:
    token.revoked_at = utcnow()
    audit.record("token.revoke", f"revoked API token {token.name}", subject_type="user",
                 subject=token.user.username, actor=actor)


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16), PASSWORD_HASH_METHOD)
