"""Users and personal API tokens."""
from flask import abort
from marshmallow import Schema, fields
from sqlalchemy import select

from berth import accounts, db
from berth.models import User
from web.api_v1 import Blueprint
from web.auth import require_api_user

blueprint = Blueprint("users_api", __name__, url_prefix="/api/v1",
                      description="Users and personal API tokens")


class UserSchema(Schema):
    id = fields.Int(dump_only=True)
    username = fields.Str(required=True)
    is_admin = fields.Bool(load_default=False)
    created_at = fields.DateTime(dump_only=True)


class NewUserSchema(UserSchema):
    password = fields.Str(required=True, load_only=True)


class NewTokenSchema(Schema):
    name = fields.Str(required=True)


class TokenSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    token = fields.Str(metadata={"description": "shown once; store it now"})


def require_system_admin():
    user = require_api_user()
    if not user.is_admin:
        abort(403, description="only system administrators may do this")
    return user


@blueprint.get("/me")
@blueprint.response(200, UserSchema)
@blueprint.doc(security=[{"basic": []}, {"cookie": []}])
def me():
    return require_api_user()


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


@blueprint.post("/tokens")
@blueprint.arguments(NewTokenSchema)
@blueprint.response(201, TokenSchema)
def create_token(new):
    user = require_api_user()
    token, secret = accounts.create_api_token(user, new["name"])
    db.session.flush()
    return {"id": token.id, "name": token.name, "token": secret}
