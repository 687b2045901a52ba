"""Alerts: each service's thresholds, the alerts that fire now and fired lately, and the
webhook Alertmanager posts them to."""
from __future__ import annotations

import hmac

from flask import current_app, request
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import Unauthorized

from berth import db
from berth.celery_app import enqueue
from berth.monitoring import alerts
from web.api_v1 import Blueprint
from web.api_v1.applications import operated_service, viewed_service
from web.auth import require_api_user

blueprint = Blueprint("alerts_api", __name__, url_prefix="/api/v1",
                      description="Alerts: thresholds per service, and what fires")


class ThresholdsSchema(Schema):
    p999_s = fields.Float(metadata={"description": "P999 above this many seconds alerts"})
    error_ratio = fields.Float(metadata={"description": "error share (0..1) above this alerts"})
    enabled = fields.Bool()
    custom = fields.Bool(metadata={"description": "false: the configured defaults apply"})
    default_p999_s = fields.Float()
    default_error_ratio = fields.Float()
    metrics = fields.Bool(metadata={"description": "whether the service declares metrics "
                                                   "(the thresholds only apply then)"})


class ThresholdsChangeSchema(Schema):
    p999_s = fields.Float(allow_none=True, validate=validate.Range(
        min=0, min_inclusive=False, max=alerts.MAX_P999_S), metadata={
        "description": "seconds; null: the default"})
    error_ratio = fields.Float(allow_none=True, validate=validate.Range(
        min=0, min_inclusive=False, max=1), metadata={"description": "0..1; null: the default"})
    enabled = fields.Bool(load_default=True)


class AlertSchema(Schema):
    fingerprint = fields.Str()
    alertname = fields.Str()
    status = fields.Str()
    labels = fields.Dict(keys=fields.Str(), values=fields.Str())
    annotations = fields.Dict(keys=fields.Str(), values=fields.Str())
    starts_at = fields.Str(allow_none=True)
    ends_at = fields.Str(allow_none=True)
    received_at = fields.Str(allow_none=True)


class AlertsAnswer(Schema):
    firing = fields.List(fields.Nested(AlertSchema))
    recent = fields.List(fields.Nested(AlertSchema))


def rerender_rules() -> None:
    from berth.monitoring.tasks import render_rules

    enqueue(render_rules)


@blueprint.get("/applications/<name>/services/<service>/alerts/thresholds")
@blueprint.response(200, ThresholdsSchema)
def get_thresholds(name, service):
    """The P999 and error-ratio thresholds that apply to the service."""
    _user, found = viewed_service(name, service)
    return alerts.thresholds(db.session, found, current_app.config["BERTH"])


@blueprint.put("/applications/<name>/services/<service>/alerts/thresholds")
@blueprint.arguments(ThresholdsChangeSchema)
@blueprint.response(200, ThresholdsSchema)
def put_thresholds(change, name, service):
    """Set the service's thresholds (its project's admins and developers may); the alert
    rules are re-rendered and Prometheus reloads them."""
    _user, found = operated_service(name, service)
    alerts.set_thresholds(db.session, found, **change)
    rerender_rules()
    return alerts.thresholds(db.session, found, current_app.config["BERTH"])


def visible_alerts(user) -> dict:
    rows = [row for row in alerts.recent(db.session)
            if alerts.may_see(user, row.labels, db.session)]
    return {"firing": [alerts.as_json(r) for r in alerts.firing(rows)],
            "recent": [alerts.as_json(r) for r in rows]}


@blueprint.get("/alerts")
@blueprint.response(200, AlertsAnswer)
def list_alerts():
    """What fires now and what Alertmanager reported lately, about what the caller may see."""
    return visible_alerts(require_api_user())


@blueprint.post("/alerts/webhook")
@blueprint.doc(security=[{"bearer": []}])
@blueprint.response(200, Schema.from_dict({"stored": fields.Int()}))
def webhook():
    """For Alertmanager (webhook payload version 4), with the bearer token Berth wrote to its
    credentials file. Each alert state is stored once, however often it is resent."""
    expected = current_app.config["BERTH"].alert_webhook_token
    credentials = request.authorization
    if not expected or credentials is None or credentials.type != "bearer" or \
            not hmac.compare_digest((credentials.token or "").encode(), expected.encode()):
        raise Unauthorized("Alertmanager's bearer token is required (see the credentials_file "
                           "in alertmanager.yml)")
    return {"stored": alerts.store_webhook(db.session, request.get_json(silent=True))}
