"""Your account page: change your password, create and revoke your personal API tokens."""
from __future__ import annotations

from flask import (Blueprint, current_app, flash, make_response, redirect, render_template,
                   request, url_for)
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from berth import accounts, db
from berth.clock import utcnow
from berth.errors import BerthError
from web.api_v1 import ROW_ID
from web.security import login_failures, too_many_failures

blueprint = Blueprint("account", __name__, url_prefix="/account")

# Every POST here is CSRF-checked by CSRFProtect before the view runs (400 without the
# token); the revoke buttons carry just the token.


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    new_password = PasswordField("New password", validators=[
        DataRequired(), Length(min=accounts.MIN_PASSWORD_LENGTH, max=256,
                               message=f"at least {accounts.MIN_PASSWORD_LENGTH} characters "
                                       "(at most 256)")])
    confirm = PasswordField("New password again", validators=[
        DataRequired(), EqualTo("new_password", message="the two new passwords differ")])


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    lifetime_days = IntegerField("Lifetime (days)", validators=[Optional(), NumberRange(min=1)])


def _user():
    return current_user._get_current_object()


VIA_PASSWORD_CHANGE = "password change"


def change_own_password(user, current: str, new: str):
    """The change, with the current password checked like a login: a wrong one counts as a
    failed login and a full count refuses it (429), so a stolen session or API token cannot
    guess the password. Returns the 429 answer, or None once changed."""
    failures = login_failures()
    lockout = failures.lockout(user.username, request.remote_addr)
    if lockout is not None:
        return too_many_failures(lockout)
    try:
        accounts.change_password(user, current, new)
    except accounts.WrongPassword:
        failures.failed(user.username, request.remote_addr, VIA_PASSWORD_CHANGE)
        raise
    return None


def _lifetime_limit() -> int:
    return current_app.config["BERTH"].api_token_lifetime_days


def _render(*, status: int = 200, password_form: PasswordForm | None = None,
            token_form: TokenForm | None = None, new_token: tuple[str, str] | None = None):
    return render_template(
        "account/index.html",
        tokens=accounts.tokens_of(_user()),
        now=utcnow(),
        lifetime_limit=_lifetime_limit(),
        password_form=password_form or PasswordForm(formdata=None),
        token_form=token_form or TokenForm(formdata=None),
        new_token=new_token,
    ), status


@blueprint.get("")
@login_required
def index():
    return _render()


@blueprint.post("/password")
@login_required
def change_password():
    form = PasswordForm()
    if not form.validate_on_submit():
        return _render(status=400, password_form=form)
    user = _user()
    try:
        refused = change_own_password(user, form.current_password.data, form.new_password.data)
    except BerthError as error:
        db.session.rollback()
        field = form.current_password if isinstance(error, accounts.WrongPassword) else form.new_password
        field.errors = [*field.errors, error.message]
        return _render(status=error.status, password_form=form)
    if refused is not None:
        return refused
    # The change ended every session, this one too; the person here just proved the
    # password, so this browser stays logged in under the new session version.
    login_user(user)
    flash("Your password is changed. Your other sessions have ended; API tokens still work.",
          "success")
    return redirect(url_for("account.index"))


@blueprint.post("/tokens")
@login_required
def create_token():
    """The secret is shown in this response only: rendered here (201), never redirected,
    never put in the session, and the response may not be cached."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _render(status=400, token_form=form)
    limit = _lifetime_limit()
    lifetime = form.lifetime_days.data or limit
    if limit and lifetime > limit:
        form.lifetime_days.errors = [f"at most {limit} days on this installation"]
        return _render(status=400, token_form=form)
    try:
        token, secret = accounts.create_api_token(_user(), form.name.data.strip(), lifetime)
    except BerthError as error:
        db.session.rollback()
        form.name.errors = [*form.name.errors, error.message]
        return _render(status=error.status, token_form=form)
    db.session.flush()
    response = make_response(_render(status=201, new_token=(token.name, secret)))
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post(f"/tokens/<{ROW_ID}:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    user = _user()
    token = accounts.find_token(user, token_id)
    accounts.revoke_api_token(token, actor=user.username)
    flash(f"API token {token.name} is revoked: it is refused from now on.", "success")
    return redirect(url_for("account.index"))
