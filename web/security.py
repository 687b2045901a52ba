"""Defences at the web edge: limits on failed logins, security headers and cookie flags."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from limits import RateLimitItem, parse
from werkzeug.middleware.proxy_fix import ProxyFix

from berth import audit, db
from berth.config import Config
from web.errors import error_response, wants_json
from web.extensions import limiter

log = logging.getLogger(__name__)

# The vendored assets (bootstrap, htmx, berth.js/css) are all served from this site, and the
# templates carry no inline scripts, handlers or styles. Bootstrap's CSS draws some icons from
# data: URIs, hence img-src. frame-ancestors is the CSP form of X-Frame-Options DENY.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Page URLs name projects, images and hosts: other sites are not told them.
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"

LOGIN_FAILED = "user.login_failed"
VIA_FORM, VIA_BASIC, VIA_REGISTRY = "login form", "HTTP Basic", "registry token endpoint"


@dataclass(frozen=True)
class Lockout:
    retry_after_s: int
    reason: str  # which limit: "this username" or "your address"


class LoginFailures:
    """Counts failed logins per username and per client address in a moving window.

    Only failures are counted (a client with a valid credential is never slowed, however
    often it calls), but while either count is full every attempt for that username or from
    that address is refused, a correct password included, so guessing cannot go on.
    The counts live in Flask-Limiter's storage (Redis when the broker is Redis).
    """

    def __init__(self, per_user: RateLimitItem, per_address: RateLimitItem, namespace: str):
        self.per_user = per_user
        self.per_address = per_address
        # Two Berths sharing one Redis keep their counts apart.
        self.namespace = namespace

    def _keys(self, username: str, address: str):
        return ((self.per_user, ("login-failures", self.namespace, "user", username[:255]),
                 "this username"),
                (self.per_address, ("login-failures", self.namespace, "address", address),
                 "your address"))

    def lockout(self, username: str, address: str | None) -> Lockout | None:
        """None when an attempt may be checked; else how long until one may."""
        strategy = limiter.limiter
        try:
            for item, key, reason in self._keys(username, address or "-"):
                if not strategy.test(item, *key):
                    reset_at = strategy.get_window_stats(item, *key).reset_time
                    return Lockout(max(1, math.ceil(reset_at - time.time())), reason)
        except Exception:  # the storage is down: let logins through rather than lock all out
            log.exception("login failure counts unavailable; not enforcing the limits")
        return None

    def failed(self, username: str, address: str | None, via: str) -> None:
        """Count a failed attempt and record it (never the password) once the request's own
        transaction is over: the request rolls back, the audit event must not."""
        strategy = limiter.limiter
        try:
            for item, key, _reason in self._keys(username, address or "-"):
                strategy.hit(item, *key)
        except Exception:
            log.exception("login failure counts unavailable; failure not counted")
        g.setdefault("failed_logins", []).append((username, address, via))


def login_failures() -> LoginFailures:
    return current_app.extensions["berth.login_failures"]


def too_many_failures(lockout: Lockout):
    """The 429 answer: JSON for API and registry clients, the login page for people."""
    message = (f"too many failed logins for {lockout.reason}: "
               f"try again in {lockout.retry_after_s} s")
    headers = {"Retry-After": str(lockout.retry_after_s)}
    if wants_json():
        return error_response(429, message, {"retry_after_s": lockout.retry_after_s},
                              headers=headers)
    return render_template("error.html", status=429, message=message), 429, headers


def _write_failed_logins(_exc) -> None:
    failures = g.pop("failed_logins", None)
    if not failures:
        return
    # teardown: the request's unit of work has committed or rolled back; this is its own.
    db.session.rollback()
    try:
        for username, address, via in failures:
            audit.record(LOGIN_FAILED, f"failed login as {username} via {via}",
                         subject_type="user", subject=username[:255], source_addr=address,
                         via=via)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not record %d failed logins", len(failures))


def _rate(config: Config, name: str) -> RateLimitItem:
    raw = getattr(config, name)
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"BERTH_{name.upper()}={raw!r} is not a rate: write it like "
                         f"'10 per 5 minutes'") from None


def _add_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Secure session cookies when configured (TLS ends at a proxy) or when this very request
    came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or request.is_secure


def init_app(app: Flask, config: Config) -> None:
    if config.proxy_hops:
        # Behind a proxy the client's address and scheme come from X-Forwarded-For/-Proto;
        # trusted only for that many hops, as anyone can send these headers.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops,
                                x_proto=config.proxy_hops)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        RATELIMIT_STORAGE_URI=config.rate_limit_storage_uri,
    )
    app.session_interface = SessionInterface()
    limiter.init_app(app)
    app.extensions["berth.login_failures"] = LoginFailures(
        _rate(config, "login_failures_per_user"), _rate(config, "login_failures_per_address"),
        namespace=config.installation_id)
    app.after_request(_add_security_headers)
    app.teardown_request(_write_failed_logins)
