"""Revisions and releases of services: the history, the diff, starting a release (of one
service, or of several together) and acting on it."""
from __future__ import annotations

from flask import current_app, request
from marshmallow import Schema, fields

from berth import db
from berth.errors import InvalidInput
from berth.workloads import releases
from scheduler.orchestration.state import READY_HEALTH
from web.api_v1 import ROW_ID, Blueprint, UtcDateTime
from web.api_v1.applications import (
    operated_application, operated_service, viewed_service,
)

blueprint = Blueprint("releases_api", __name__, url_prefix="/api/v1/applications",
                      description="Revisions and releases: rolling, canary, blue-green, in stages")

SERVICE = "/<name>/services/<service>"
_BODY = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "changes": {"type": "object", "description": "a new revision: image, command, environment, "
                                                 "cpus, memory, healthcheck"},
    "revision": {"type": "integer", "description": "release an earlier revision (a rollback)"},
    "strategy": {"type": "string", "enum": ["rolling", "canary", "blue_green"]},
    "batch": {"description": "a count or a percentage (\"25%\")"},
    "max_surge": {}, "max_unavailable": {}, "pause_s": {"type": "number"},
    "deadline_s": {"type": "number"}, "max_failures": {"type": "integer"},
    "auto_rollback": {"type": "boolean"}, "canary_count": {"type": "integer"},
    "analysis_s": {"type": "number"}, "auto_promote_s": {"type": "number"},
    "switch": {"type": "string", "enum": ["auto", "manual"]},
    "retire_after_s": {"type": "number"},
    "stages": {"type": "array", "items": {"type": "object", "properties": {
        "pools": {"type": "array", "items": {"type": "string"}}, "idc": {"type": "string"}}}},
    "observe_s": {"type": "number"}, "approval": {"type": "boolean"},
    "update_config": {"type": "object", "description": "Compose's deploy.update_config"},
}}}}}


class RevisionSchema(Schema):
    number = fields.Int()
    spec = fields.Dict()
    created_at = UtcDateTime()
    created_by = fields.Str(allow_none=True)
    released = fields.Method("is_released")

    def is_released(self, revision):
        return revision.number == revision.service.revision


class DiffSchema(Schema):
    changes = fields.Dict(metadata={"description": "field -> {from, to}"})


class ReleaseSchema(Schema):
    id = fields.Int()
    group = fields.Str(allow_none=True)
    service = fields.Function(lambda r: r.service.name)
    from_revision = fields.Int()
    to_revision = fields.Int()
    strategy = fields.Str()
    status = fields.Str(metadata={"description": "running, paused, waiting (for promotion or "
                                                 "approval); succeeded, rolled_back, failed"})
    detail = fields.Str(allow_none=True)
    plan = fields.Function(lambda r: r.settings.get("plan"))
    replicas = fields.Function(lambda r: r.settings.get("replicas"))
    progress = fields.Dict()
    analysis = fields.Dict(allow_none=True)
    instances = fields.Method("per_revision", metadata={
        "description": "revision -> {running, ready}: the instances each revision has now"})
    created_by = fields.Str(allow_none=True)
    created_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)

    def per_revision(self, release):
        out = {}
        for instance in release.service.instances:
            if instance.state == "running" and instance.revision in (
                    release.from_revision, release.to_revision):
                entry = out.setdefault(str(instance.revision), {"running": 0, "ready": 0})
                entry["running"] += 1
                entry["ready"] += instance.health in READY_HEALTH
        return out


def _body() -> dict:
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        raise InvalidInput("expected a JSON object")
    return raw


@blueprint.get(SERVICE + "/revisions")
@blueprint.response(200, RevisionSchema(many=True))
def list_revisions(name, service):
    """The kept revisions (up to 10 besides those a release uses), oldest first."""
    return viewed_service(name, service)[1].revisions


@blueprint.get(SERVICE + f"/revisions/<{ROW_ID}:number>")
@blueprint.response(200, RevisionSchema)
def get_revision(name, service, number):
    return releases.get_revision(viewed_service(name, service)[1], number)


@blueprint.get(SERVICE + f"/revisions/<{ROW_ID}:a>/diff/<{ROW_ID}:b>")
@blueprint.response(200, DiffSchema)
def diff_revisions(name, service, a, b):
    _user, found = viewed_service(name, service)
    return {"changes": releases.diff(releases.get_revision(found, a), releases.get_revision(found, b))}


@blueprint.get(SERVICE + "/releases")
@blueprint.response(200, ReleaseSchema(many=True))
def list_releases(name, service):
    """The service's releases, newest first: who, when, from which revision to which, the outcome."""
    from sqlalchemy import select

    from berth.models import Release

    _user, found = viewed_service(name, service)
    return db.session.scalars(select(Release).where(Release.service_id == found.id)
                              .order_by(Release.id.desc()).limit(100)).all()


@blueprint.post(SERVICE + "/releases")
@blueprint.response(201, ReleaseSchema)
@blueprint.doc(requestBody=_BODY)
def start_release(name, service):
    """Release a new revision (`changes`) or an earlier one (`revision`). Defaults: rolling,
    batches of 25%, max surge and max unavailable 25%, 600 s to be ready per batch, rollback
    on failure. An image missing from the registry, an unknown pool or IDC in a stage, a
    batch of 0, or a release while another runs: 4xx, nothing started."""
    user, found = operated_service(name, service)
    return releases.start(found, _body(), actor=user.username, config=current_app.config["BERTH"])


@blueprint.get(SERVICE + f"/releases/<{ROW_ID}:release_id>")
@blueprint.response(200, ReleaseSchema)
def get_release(name, service, release_id):
    return releases.get_release(viewed_service(name, service)[1], release_id)


@blueprint.post(SERVICE + f"/releases/<{ROW_ID}:release_id>/<action>")
@blueprint.response(200, ReleaseSchema)
def act_on_release(name, service, release_id, action):
    """pause, resume, promote (canary: roll out the rest; blue-green: switch, or retire the
    old set once switched; between stages: start the next), rollback (also switch-back and
    abort), retry (a release that ended without succeeding, again)."""
    user, found = operated_service(name, service)
    return releases.act(found, releases.get_release(found, release_id), action, actor=user.username)


@blueprint.post("/<name>/releases")
@blueprint.response(201, ReleaseSchema(many=True))
@blueprint.doc(requestBody={"content": {"application/json": {"schema": {"type": "object", "properties": {
    "services": {"type": "object", "description": "service -> {changes} or {revision}, "
                                                  "with settings of its own"}}}}}})
def start_group(name):
    """Releases of several services together (one group): the other fields are the settings
    they share. Promote or roll them back together with the group's actions."""
    user, application = operated_application(name)
    body = _body()
    bodies = body.pop("services", None)
    return releases.start_group(application, bodies, body,
                                actor=user.username, config=current_app.config["BERTH"])


@blueprint.post("/<name>/release-groups/<group>/<action>")
@blueprint.response(200, ReleaseSchema(many=True))
def act_on_group(name, group, action):
    user, application = operated_application(name)
    return releases.act_group(application, group, action, actor=user.username)
