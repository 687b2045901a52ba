"""The /api/v1 JSON API: one flask-smorest blueprint per area, documented in OpenAPI."""
from flask_smorest import Api
from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser

from web.extensions import csrf


class _Parser(FlaskParser):
    # Bad input is the client's to fix: 400 with the field errors, as everywhere in Berth.
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(_Blueprint):
    ARGUMENTS_PARSER = _Parser()


def register_api(api: Api) -> None:
    from web.api_v1 import applications, audit, hosts, projects, releases, users

    api.spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    api.spec.components.security_scheme(
        "cookie", {"type": "apiKey", "in": "cookie", "name": "session"})
    for blueprint in (users.blueprint, projects.blueprint, audit.blueprint, hosts.blueprint,
                      applications.blueprint, releases.blueprint):
        # API clients authenticate per request; cookie-authenticated changes are
        # CSRF-checked in require_api_user instead (X-CSRFToken header).
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint)
