"""Helpers for tests (not fixtures): paths, auth headers, waiting on a condition."""
from __future__ import annotations

import base64
import re
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPOSITORY = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_parts(missing: list[str], how_to_get_them: str) -> None:
    """Skip a test whose parts are missing on a developer's machine; fail it in CI, where
    nothing may be skipped for lack of parts."""
    import pytest

    if missing:
        message = f"missing: {', '.join(missing)} ({how_to_get_them})"
        if running_in_ci():
            pytest.fail(message)
        pytest.skip(message)


def system_program(name: str) -> str | None:
    """Where `name` is, looking in the sbin directories too (non-root PATHs lack them)."""
    import shutil

    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/local/sbin:/usr/sbin:/sbin")


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def wait_for(condition: Callable[[], T], timeout_s: float, what: str,
             interval_s: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def csrf_token_of(html: str) -> str:
    return re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', html).group(1)


def login(client, username: str, password: str) -> str:
    """Log in through the form, as a person does; returns the CSRF token for later posts."""
    token = csrf_token_of(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token})
    assert response.status_code == 302, response.text
    return csrf_token_of(client.get("/").text)


def make_tls() -> dict[str, str]:
    """A real self-signed certificate and its key (EC: quick to make), as ca/cert/key PEM."""
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from berth.clock import utcnow

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-test")])
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return {"ca": cert_pem, "cert": cert_pem, "key": key_pem}


def count_queries(action: Callable[[], object]) -> int:
    """How many SQL statements `action` runs on Berth's engine (to catch N+1 loads)."""
    from sqlalchemy import event

    from berth import db

    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine(), "before_cursor_execute", listener)
    try:
        action()
    finally:
        event.remove(db.engine(), "before_cursor_execute", listener)
    return len(statements)
