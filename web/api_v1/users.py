"""Users, their passwords and activation, and personal API tokens."""
from flask import abort, current_app
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from berth import accounts, db
from berth.clock import utcnow
from berth.errors import InvalidInput, NotFound
from berth.models import ApiToken, User
from web.account import change_own_password
from web.api_v1 import ROW_ID, Blueprint, UtcDateTime
from web.auth import require_api_user

blueprint = Blueprint("users_api", __name__, url_prefix="/api/v1",
                      description="Users and personal API tokens")


class UserSchema(Schema):
    id = fields.Int(dump_only=True)
    username = fields.Str(required=True)
    is_admin = fields.Bool(load_default=False)
    active = fields.Bool(dump_only=True)
    created_at = UtcDateTime(dump_only=True)


class NewUserSchema(UserSchema):
    password = fields.Str(required=True, load_only=True)


class UserPatchSchema(Schema):
    active = fields.Bool(required=True, metadata={
        "description": "false deactivates: the user's sessions, API tokens and registry "
                       "logins stop at once (tokens are revoked); true reactivates"})


class PasswordChangeSchema(Schema):
    current_password = fields.Str(required=True, load_only=True)
    new_password = fields.Str(required=True, load_only=True, metadata={
        "description": f"at least {accounts.MIN_PASSWORD_LENGTH} characters"})


class NewTokenSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    lifetime_days = fields.Int(load_default=None, metadata={
        "description": "days until it expires; at most (and by default) the configured "
                       "lifetime, BERTH_API_TOKEN_LIFETIME_DAYS"})


class TokenSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    state = fields.Str(metadata={"description": "active, expired or revoked"})
    created_at = UtcDateTime()
    expires_at = UtcDateTime(allow_none=True, metadata={"description": "null: never"})
    last_used_at = UtcDateTime(allow_none=True)
    revoked_at = UtcDateTime(allow_none=True)


class NewTokenResponseSchema(TokenSchema):
    token = fields.Str(metadata={"description": "shown once; store it now"})


def require_system_admin():
    user = require_api_user()
    if not user.is_admin:
        abort(403, description="only system administrators may do this")
    return user


def _token_dict(token: ApiToken, secret: str | None = None) -> dict:
    data = {"id": token.id, "name": token.name, "state": token.state(utcnow()),
            "created_at": token.created_at, "expires_at": token.expires_at,
            "last_used_at": token.last_used_at, "revoked_at": token.revoked_at}
    if secret:
        data["token"] = secret
    return data


def _get_user(username: str) -> User:
    user = accounts.find_user(username)
    if user is None:
        raise NotFound(f"unknown user {username!r}")
    return user


def token_lifetime_days(requested: int | None) -> int:
    """The configured lifetime caps what a caller asks for (0 configured: no cap, no expiry
    by default)."""
    limit = current_app.config["BERTH"].api_token_lifetime_days
    if requested is None:
        return limit
    if requested < 1 or (limit and requested > limit):
        raise InvalidInput(f"lifetime_days must be 1-{limit or 3650} "
                           f"(this installation's API token lifetime is "
                           f"{f'{limit} days' if limit else 'unlimited'})")
    return requested


@blueprint.get("/me")
@blueprint.response(200, UserSchema)
@blueprint.doc(security=[{"basic": []}, {"cookie": []}])
def me():
    return require_api_user()


@blueprint.post("/users/me/password")
@blueprint.arguments(PasswordChangeSchema)
@blueprint.response(204)
def change_password(change):
    """Change your own password: every session ends (log in again); API tokens stay. A wrong
    current password counts as a failed login (429 once too many)."""
    return change_own_password(require_api_user(), change["current_password"],
                               change["new_password"])


@blueprint.get("/users")
@blueprint.response(200, UserSchema(many=True))
def list_users():
    require_system_admin()
    return db.session.scalars(select(User).order_by(User.username)).all()


@blueprint.post("/users")
@blueprint.arguments(NewUserSchema)
@blueprint.response(201, UserSchema)
def create_user(new):
    admin = require_system_admin()
    user = accounts.create_user(new["username"], new["password"], is_admin=new["is_admin"],
                                actor=admin.username)
    db.session.flush()
    return user


@blueprint.get("/users/<username>")
@blueprint.response(200, UserSchema)
def get_user(username):
    require_system_admin()
    return _get_user(username)


@blueprint.patch("/users/<username>")
@blueprint.arguments(UserPatchSchema)
@blueprint.response(200, UserSchema)
def patch_user(patch, username):
    """Deactivate or reactivate a user (system administrators)."""
    admin = require_system_admin()
    user = _get_user(username)
    accounts.set_active(user, patch["active"], actor=admin.username)
    return user


@blueprint.get("/users/<username>/tokens")
@blueprint.response(200, TokenSchema(many=True))
def list_user_tokens(username):
    require_system_admin()
    return [_token_dict(t) for t in accounts.tokens_of(_get_user(username))]


@blueprint.delete(f"/users/<username>/tokens/<{ROW_ID}:token_id>")
@blueprint.response(204)
def revoke_user_token(username, token_id):
    admin = require_system_admin()
    user = _get_user(username)
    token = accounts.find_token(user, token_id)
    accounts.revoke_api_token(token, actor=admin.username)


@blueprint.get("/tokens")
@blueprint.response(200, TokenSchema(many=True))
def list_tokens():
    """Your API tokens, newest first (never their secrets)."""
    return [_token_dict(t) for t in accounts.tokens_of(require_api_user())]


@blueprint.post("/tokens")
@blueprint.arguments(NewTokenSchema)
@blueprint.response(201, NewTokenResponseSchema)
def create_token(new):
    user = require_api_user()
    token, secret = accounts.create_api_token(user, new["name"],
                                              token_lifetime_days(new["lifetime_days"]))
    db.session.flush()
    return _token_dict(token, secret)


@blueprint.delete(f"/tokens/<{ROW_ID}:token_id>")
@blueprint.response(204)
def revoke_token(token_id):
    """Revoke one of your tokens: it is refused from the next request on."""
    user = require_api_user()
    accounts.revoke_api_token(accounts.find_token(user, token_id), actor=user.username)
