"""The users page for system administrators: deactivate or reactivate a user, and see and
revoke a user's API tokens."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import HiddenField
from wtforms.validators import AnyOf

from berth import accounts, db
from berth.clock import utcnow
from berth.errors import BerthError, Forbidden, NotFound
from berth.models import ApiToken, User
from web.api_v1 import ROW_ID

blueprint = Blueprint("users", __name__, url_prefix="/users")


class ActiveForm(FlaskForm):
    active = HiddenField(validators=[AnyOf(["true", "false"])])


def _admin() -> User:
    user = current_user._get_current_object()
    if not user.is_admin:
        raise Forbidden("only system administrators manage users")
    return user


def _get_user(username: str) -> User:
    user = accounts.find_user(username)
    if user is None:
        raise NotFound(f"unknown user {username!r}")
    return user


@blueprint.get("/")
@login_required
def index():
    _admin()
    users = db.session.scalars(select(User).order_by(User.username)).all()
    now = utcnow()
    active_tokens = dict(db.session.execute(
        select(ApiToken.user_id, func.count()).where(
            ApiToken.revoked_at.is_(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        .group_by(ApiToken.user_id)).all())
    return render_template("users/index.html", users=users, active_tokens=active_tokens)


@blueprint.get("/<username>")
@login_required
def show(username: str):
    _admin()
    user = _get_user(username)
    return render_template("users/show.html", user=user, tokens=accounts.tokens_of(user),
                           now=utcnow())


@blueprint.post("/<username>/active")
@login_required
def set_active(username: str):
    admin = _admin()
    user = _get_user(username)
    form = ActiveForm()
    if not form.validate_on_submit():
        flash("Choose to activate or deactivate.", "danger")
        return redirect(url_for("users.index"))
    active = form.active.data == "true"
    try:
        accounts.set_active(user, active, actor=admin.username)
    except BerthError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for("users.index"))
    flash(f"{user.username} is reactivated (API tokens stay revoked)." if active else
          f"{user.username} is deactivated: their sessions, API tokens and registry logins "
          "are refused from now on.", "success")
    return redirect(url_for("users.index"))


@blueprint.post(f"/<username>/tokens/<{ROW_ID}:token_id>/revoke")
@login_required
def revoke_token(username: str, token_id: int):
    admin = _admin()
    token = accounts.find_token(_get_user(username), token_id)
    accounts.revoke_api_token(token, actor=admin.username)
    flash(f"API token {token.name} of {username} is revoked.", "success")
    return redirect(url_for("users.show", username=username))
