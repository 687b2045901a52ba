"""Issuing, verifying and answering with registry bearer tokens."""
import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography import x509

from berth.registry_auth import (
    Grant,
    InvalidToken,
    IssuedToken,
    SigningKey,
    issue_token,
    token_response,
    verify_token,
)

NOW = datetime(2030, 5, 17, 8, 0, 0, tzinfo=UTC)
KEY = SigningKey.generate(now=NOW - timedelta(days=30))
OTHER_KEY = SigningKey.generate(now=NOW - timedelta(days=30))
ACCESS = [
    Grant("repository", None, "shop/web", frozenset({"pull", "push"})),
    Grant("repository", None, "base/img", frozenset()),
]


def issue(key=KEY, *, now=NOW, lifetime_s=300, subject="dev", access=ACCESS):
    return issue_token(
        key,
        issuer="berth",
        audience="berth-registry",
        subject=subject,
        access=access,
        lifetime_s=lifetime_s,
        now=now,
    )


def verify(token, key=KEY, *, now=NOW, issuer="berth", audience="berth-registry", leeway_s=0):
    return verify_token(token, key, issuer=issuer, audience=audience, now=now, leeway_s=leeway_s)


def decode_part(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_claims():
    issued = issue()
    claims = decode_part(issued.token, 1)
    stamp = int(NOW.timestamp())
    assert claims == {
        "iss": "berth",
        "sub": "dev",
        "aud": "berth-registry",  # a string: registry 2.8 refuses a list
        "exp": stamp + 300,
        "nbf": stamp,
        "iat": stamp,
        "jti": claims["jti"],
        "access": [
            {"type": "repository", "name": "shop/web", "actions": ["pull", "push"]},
            {"type": "repository", "name": "base/img", "actions": []},
        ],
    }
    assert len(claims["jti"]) >= 20


def test_header_names_the_key_both_ways():
    header = decode_part(issue().token, 0)
    assert header == {"typ": "JWT", "alg": "ES256", "kid": KEY.kid, "x5c": KEY.x5c}
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    # what the registry does: take the key from the x5c leaf and check the signature
    jwt.decode(
        issue().token,
        leaf.public_key(),
        algorithms=["ES256"],
        audience="berth-registry",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )


def test_issued_token_fields():
    issued = issue(lifetime_s=900)
    assert isinstance(issued, IssuedToken)
    token, expires_in, issued_at = issued
    assert expires_in == 900
    assert issued_at == NOW and issued_at.tzinfo is not None


def test_jti_is_unique():
    assert len({decode_part(issue().token, 1)["jti"] for _ in range(20)}) == 20


def test_anonymous_login_token():
    claims = verify(issue(subject="", access=[]).token)
    assert claims["sub"] == "" and claims["access"] == []


def test_naive_clock_is_utc():
    naive = NOW.replace(tzinfo=None)
    assert decode_part(issue(now=naive).token, 1)["iat"] == int(NOW.timestamp())


@pytest.mark.parametrize("lifetime_s", [0, 30, 59])
def test_lifetime_of_at_least_60_seconds(lifetime_s):
    with pytest.raises(ValueError, match="at least 60"):
        issue(lifetime_s=lifetime_s)


def test_verify_returns_claims():
    claims = verify(issue().token)
    assert claims["sub"] == "dev"
    assert claims["access"][0] == {
        "type": "repository",
        "name": "shop/web",
        "actions": ["pull", "push"],
    }


@pytest.mark.parametrize(
    ("offset_s", "leeway_s", "valid"),
    [
        (0, 0, True),
        (299, 0, True),
        (300, 0, True),  # exp is the last valid second
        (301, 0, False),
        (3600, 0, False),
        (330, 60, True),
        (361, 60, False),
        (-1, 0, False),  # before nbf
        (-30, 60, True),
    ],
)
def test_expiry_with_injected_clock(offset_s, leeway_s, valid):
    token = issue(lifetime_s=300).token
    moment = NOW + timedelta(seconds=offset_s)
    if valid:
        verify(token, now=moment, leeway_s=leeway_s)
    else:
        with pytest.raises(InvalidToken, match="expired|not valid yet"):
            verify(token, now=moment, leeway_s=leeway_s)


@pytest.mark.parametrize(
    ("make_token", "verify_kwargs"),
    [
        pytest.param(lambda: issue().token, dict(audience="other-registry"), id="wrong audience"),
        pytest.param(lambda: issue().token, dict(issuer="someone-else"), id="wrong issuer"),
        pytest.param(lambda: issue(OTHER_KEY).token, {}, id="other key"),
        pytest.param(
            lambda: jwt.encode(
                decode_part(issue().token, 1),
                OTHER_KEY.private_key,
                algorithm="ES256",
                headers={"kid": KEY.kid},
            ),
            {},
            id="other key claiming our kid",
        ),
        pytest.param(lambda: _tampered(issue().token), {}, id="tampered claims"),
        pytest.param(lambda: _unsigned(issue().token), {}, id="alg none"),
        pytest.param(lambda: "not.a.token", {}, id="garbage"),
        pytest.param(
            lambda: jwt.encode(
                {"iss": "berth", "aud": "berth-registry", "exp": 2**40},
                KEY.private_key,
                algorithm="ES256",
                headers={"kid": KEY.kid},
            ),
            {},
            id="missing claims",
        ),
    ],
)
def test_verify_rejects(make_token, verify_kwargs):
    with pytest.raises(InvalidToken):
        verify(make_token(), **verify_kwargs)


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    claims = decode_part(token, 1)
    claims["access"][0]["actions"].append("delete")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


def _unsigned(token: str) -> str:
    header = decode_part(token, 0) | {"alg": "none"}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{head}.{token.split('.')[1]}."


def test_token_response():
    issued = issue(now=datetime(2009, 11, 10, 23, 0, 0, tzinfo=UTC), lifetime_s=3600)
    assert token_response(issued) == {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": 3600,
        "issued_at": "2009-11-10T23:00:00Z",
    }


def test_sub_second_clock_is_truncated_consistently():
    issued = issue(now=NOW + timedelta(microseconds=999_999))
    assert issued.issued_at == NOW
    assert token_response(issued)["issued_at"] == "2030-05-17T08:00:00Z"
