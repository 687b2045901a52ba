"""Registry bearer tokens: issuing the signed JWT, checking one, and the token
endpoint's JSON body (distribution's token authentication spec)."""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import jwt

from berth.registry_auth.keys import SigningKey
from berth.registry_auth.policy import Grant

ALGORITHM = "ES256"
# The spec: "a token should never be returned with less than 60 seconds to live".
MIN_LIFETIME_S = 60


class IssuedToken(NamedTuple):
    token: str
    expires_in: int
    issued_at: datetime  # aware, UTC, whole seconds (as in the `iat` claim)


class InvalidToken(ValueError):
    """The token is not one this service issued for this audience, or it expired."""


def issue_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    access: Sequence[Grant],
    lifetime_s: int,
    now: datetime,
) -> IssuedToken:
    """Sign a token. `audience` is the registry's `service`; `subject` is "" for anonymous."""
    if lifetime_s < MIN_LIFETIME_S:
        raise ValueError(f"token lifetime must be at least {MIN_LIFETIME_S} seconds")
    issued_at = _epoch(now)
    claims = {
        "iss": issuer,
        "sub": subject,
        # A plain string: registry 2.8 reads `aud` into a string and rejects a list
        # as a malformed token (3.x takes either).
        "aud": audience,
        "exp": issued_at + lifetime_s,
        # No backdating: the registry already allows 60 s of clock skew on nbf/exp.
        "nbf": issued_at,
        "iat": issued_at,
        "jti": secrets.token_urlsafe(24),
        "access": [grant.to_claim() for grant in access],
    }
    # Both key identifications, for both registry generations: with `x5c` present,
    # 2.8 (token.go VerifySigningKey) and 3.x verify the certificate chain against
    # rootcertbundle and ignore `kid`. Without `x5c`, 2.8 would look `kid` up as a
    # libtrust fingerprint while 3.x expects an RFC 7638 thumbprint, so `kid` alone
    # could only ever suit one of them; it stays as the key's name for logs and rotation.
    headers = {"typ": "JWT", "kid": key.kid, "x5c": key.x5c}
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers=headers)
    return IssuedToken(token, lifetime_s, datetime.fromtimestamp(issued_at, UTC))


def token_response(issued: IssuedToken) -> dict[str, Any]:
    """The token endpoint's JSON body. Both `token` and `access_token` are sent:
    docker reads the first, OAuth2-style clients the second."""
    return {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),  # RFC 3339
    }


def verify_token(
    token: str,
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    now: datetime,
    leeway_s: int = 0,
) -> dict[str, Any]:
    """The claims of a token this key signed for `audience`, valid at `now`;
    InvalidToken otherwise."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != key.kid:
            raise InvalidToken("token was signed by another key")
        claims = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            # Time is checked below against the injected clock, not the wall clock.
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"],
            },
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(f"token rejected: {error}") from None
    moment = _epoch(now)
    if moment > claims["exp"] + leeway_s:
        raise InvalidToken("token has expired")
    if moment < claims["nbf"] - leeway_s:
        raise InvalidToken("token is not valid yet")
    if not isinstance(claims.get("access", []), list):
        raise InvalidToken("token access claim is not a list")
    return claims


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Berth's clock is naive UTC
    return int(moment.timestamp())
