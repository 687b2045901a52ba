"""The registry's side door: the token endpoint (`auth.token.realm`) and the notification
webhook. Both speak to the registry and docker clients, not to people."""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, request

from berth.projects import registry_access, registry_ops
from web.errors import error_response
from web.extensions import csrf
from web.security import VIA_REGISTRY, login_failures, too_many_failures

blueprint = Blueprint("registry", __name__, url_prefix="/service")
csrf.exempt(blueprint)

TOKEN_PATH = "/service/token"
NOTIFICATIONS_PATH = "/service/notifications"


@blueprint.get("/token")
def token():
    config = current_app.config["BERTH"]
    credentials = request.authorization
    username = password = None
    if credentials is not None and credentials.type == "basic":
        username, password = credentials.username, credentials.password
    failures = login_failures()
    if username:
        # docker asks for a token before nearly every registry call, but only failures
        # count, so a client with a valid credential is never slowed down.
        lockout = failures.lockout(username, request.remote_addr)
        if lockout is not None:
            return too_many_failures(lockout)
    try:
        body = registry_access.issue_registry_token(
            config, service=request.args.get("service", ""),
            scope_params=request.args.getlist("scope"), username=username, password=password)
    except ValueError as error:
        return error_response(400, str(error))
    except registry_access.BadCredentials:
        failures.failed(username, request.remote_addr, VIA_REGISTRY)
        return error_response(401, "wrong username or password (or robot secret)",
                              headers={"WWW-Authenticate": 'Basic realm="Berth registry"'})
    return body


@blueprint.post("/notifications")
def notifications():
    """Authenticated by the shared secret the registry sends as a bearer token."""
    expected = "Bearer " + current_app.config["BERTH"].notification_secret
    if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
        return error_response(401, "notification secret missing or wrong")
    envelope = request.get_json(silent=True)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
        return error_response(400, 'expected a registry notification envelope {"events": [...]}')
    registry_ops.apply_notification(envelope)
    return {"accepted": len(envelope["events"])}
