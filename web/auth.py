"""Who is asking: the login form (session cookie) and HTTP Basic (password or API token)."""
from __future__ import annotations

import math
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from berth import accounts, audit, db
from berth.models import User
from web.extensions import login_manager
from web.security import VIA_BASIC, VIA_FORM, login_failures, too_many_failures

blueprint = Blueprint("auth", __name__)


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    # "<user id>.<session_version>" (User.get_id): a cookie from before a logout, a new
    # password or a deactivation names an old version and logs nobody in.
    user_id, _, version = session_id.partition(".")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


@login_manager.request_loader
def _load_user_from_basic_auth(req) -> User | None:
    """HTTP Basic for API clients: a password, or a personal API token as the password."""
    credentials = req.authorization
    if credentials is None or credentials.type != "basic" or not credentials.username:
        return None
    failures = login_failures()
    lockout = failures.lockout(credentials.username, req.remote_addr)
    if lockout is not None:  # not even checked: _refuse_locked_basic_auth answers 429
        g.login_lockout = lockout
        return None
    secret = credentials.password or ""
    user = accounts.authenticate_token(secret)
    if user is not None and user.username != credentials.username:
        user = None
    if user is None:
        user = accounts.authenticate(credentials.username, secret)
    if user is not None:
        g.basic_auth = True
    else:
        failures.failed(credentials.username, req.remote_addr, VIA_BASIC)
    return user


@blueprint.before_app_request
def _refuse_locked_basic_auth():
    """HTTP Basic while its username or address is locked out: 429 wherever it is sent,
    not a 401 that reads like a wrong password. The registry's token endpoint checks its own."""
    credentials = request.authorization
    if request.blueprint == "registry" or credentials is None or credentials.type != "basic":
        return None
    if current_user.is_authenticated:  # this runs the request loader (once per request)
        return None
    lockout = g.get("login_lockout")
    return too_many_failures(lockout) if lockout is not None else None


def require_api_user() -> User:
    """For API views: a logged-in user, and CSRF proof when the cookie is what logged in."""
    if not current_user.is_authenticated:
        raise Unauthorized(
            "authentication required: HTTP Basic (password or API token) or a session cookie",
            www_authenticate=WWWAuthenticate("basic", {"realm": "Berth"}),
        )
    if request.method not in ("GET", "HEAD", "OPTIONS") and not g.get("basic_auth"):
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except CSRFError as error:  # the cookie alone must not authorise a change
            abort(400, description=f"CSRF check failed: {error.description}")
        except Exception as error:
            abort(400, description=f"CSRF check failed: {error}")
    return current_user._get_current_object()


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let a link send users anywhere.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("pages.dashboard")


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        failures = login_failures()
        lockout = failures.lockout(form.username.data, request.remote_addr)
        if lockout is not None:  # refused before the password is looked at, right or wrong
            flash(f"Too many failed logins for {lockout.reason}. Wait "
                  f"{_duration(lockout.retry_after_s)} and try again.", "warning")
            return (render_template("login.html", form=form), 429,
                    {"Retry-After": str(lockout.retry_after_s)})
        user = accounts.authenticate(form.username.data, form.password.data)
        if user is not None:
            login_user(user)
            audit.record("user.login", f"{user.username} logged in", subject_type="user",
                         subject=user.username, actor=user.username,
                         source_addr=request.remote_addr)
            return redirect(_safe_next(request.args.get("next")))
        failures.failed(form.username.data, request.remote_addr, VIA_FORM)
        flash("Wrong username or password.", "danger")
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form)


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


@blueprint.post("/logout")
@login_required
def logout():
    # The cookie is not stored server-side: ending the version is what stops a copy of it
    # (this ends the user's other sessions too).
    accounts.end_sessions(current_user._get_current_object())
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
