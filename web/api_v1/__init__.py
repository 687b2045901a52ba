"""The /api/v1 JSON API: one flask-smorest blueprint per area, documented in OpenAPI."""
from datetime import UTC

from flask import abort
from marshmallow import fields
from flask_smorest import Api
from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser

from web.extensions import csrf


# For integer ids in URLs: beyond a 64-bit integer the database driver raises (a 500, found
# by the API fuzz test); out of range, the route does not match, a 404 like any unknown id.
ROW_ID = "int(max=9223372036854775807)"


class UtcDateTime(fields.DateTime):
    """Berth keeps naive UTC datetimes; the API writes them with their offset (+00:00), as
    OpenAPI's `date-time` (RFC 3339) requires, and reads any offset as that instant in UTC
    (a naive value is taken as UTC)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class _Parser(FlaskParser):
    # Bad input is the client's to fix: 400 with the field errors, as everywhere in Berth.
    DEFAULT_VALIDATION_STATUS = 400

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        # webargs' own answer puts a bare list under "json", which the error shape's
        # per-field summary cannot read (a 500, found by the API fuzz test).
        abort(400, description=f"invalid input: the request body is not valid JSON ({error})")


class Blueprint(_Blueprint):
    ARGUMENTS_PARSER = _Parser()


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what was wrong, and how to fix it"},
        "detail": {"description": "more, when there is more: e.g. the invalid fields by "
                                  "location, or null"},
    },
    "required": ["error", "detail"],
    "additionalProperties": False,
}


def register_api(api: Api) -> None:
    from web.api_v1 import (alerts, applications, audit, compose, hosts, monitoring, projects,
                            registries, releases, users)

    # Every error is Berth's one shape (web.errors), so document that, not flask-smorest's
    # {code, status, message, errors}, which the default error responses refer to. (Setting
    # ERROR_SCHEMA on web.extensions.Api would be cleaner: init_app registers it first.)
    api.spec.components.schemas["Error"] = ERROR_SCHEMA
    api.spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    api.spec.components.security_scheme(
        "cookie", {"type": "apiKey", "in": "cookie", "name": "session"})
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for blueprint in (users.blueprint, projects.blueprint, audit.blueprint, hosts.blueprint,
                      applications.blueprint, releases.blueprint, compose.blueprint,
                      registries.blueprint, monitoring.blueprint, alerts.blueprint):
        # API clients authenticate per request; cookie-authenticated changes are
        # CSRF-checked in require_api_user instead (X-CSRFToken header).
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint)
