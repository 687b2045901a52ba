"""Short-lived pull-only credentials that Berth hands a Docker engine to pull a project's
images for a deploy. Nothing is stored: the password is a signature over the project name
and time, checked by the token service like any robot secret."""
from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

USERNAME_PREFIX = "deploy$"
_SALT = "berth.pull-credential"


def _signer(secret_key: str) -> TimestampSigner:
    return TimestampSigner(secret_key, salt=_SALT)


def issue(secret_key: str, project: str) -> tuple[str, str]:
    """(username, password) for `docker pull` of `project`'s images."""
    return USERNAME_PREFIX + project, _signer(secret_key).sign(project).decode()


def verify(secret_key: str, username: str, password: str, max_age_s: int) -> str | None:
    """The project the credential grants pull on, or None if it is not a valid one."""
    if not username.startswith(USERNAME_PREFIX):
        return None
    project = username.removeprefix(USERNAME_PREFIX)
    try:
        signed_project = _signer(secret_key).unsign(password, max_age=max_age_s).decode()
    except (SignatureExpired, BadSignature):
        return None
    return project if signed_project == project else None
