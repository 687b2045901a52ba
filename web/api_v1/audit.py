"""The audit log: who did what, when, from where."""
from __future__ import annotations

from datetime import UTC

from flask import abort
from marshmallow import Schema, fields

from berth import audit
from web.api_v1 import Blueprint, UtcDateTime
from web.auth import require_api_user

blueprint = Blueprint("audit_api", __name__, url_prefix="/api/v1/audit",
                      description="The audit log (system administrators)")


class AuditQuerySchema(Schema):
    kind = fields.Str(load_default=None, metadata={"description": "prefix, e.g. image. or member."})
    actor = fields.Str(load_default=None)
    subject = fields.Str(load_default=None)
    since = UtcDateTime(load_default=None)
    until = UtcDateTime(load_default=None)
    before_id = fields.Int(load_default=None)
    limit = fields.Int(load_default=100)


class EventSchema(Schema):
    id = fields.Int()
    at = UtcDateTime()
    kind = fields.Str()
    subject_type = fields.Str(allow_none=True)
    subject = fields.Str(allow_none=True)
    actor = fields.Str(allow_none=True)
    source_addr = fields.Str(allow_none=True)
    message = fields.Str()
    data = fields.Dict()


@blueprint.get("")
@blueprint.arguments(AuditQuerySchema, location="query")
@blueprint.response(200, EventSchema(many=True))
def list_events(filters):
    if not require_api_user().is_admin:
        abort(403, description="the full audit log is for system administrators")
    for moment in ("since", "until"):
        if filters[moment] is not None and filters[moment].tzinfo is not None:
            filters[moment] = filters[moment].astimezone(UTC).replace(tzinfo=None)  # naive UTC
    return audit.query(**filters)
