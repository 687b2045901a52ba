"""Applications and services: define (and deploy), scale, discover."""
from __future__ import annotations

from flask import Response, current_app, request
from marshmallow import Schema, fields
from werkzeug.exceptions import TooManyRequests

from berth import db
from berth.errors import NotFound
from berth.workloads import access, autoscaling, definitions
from berth.workloads import services as workloads
from berth.workloads.upstream import render_upstream
from web.api_v1 import Blueprint, UtcDateTime
from web.auth import require_api_user

blueprint = Blueprint("applications_api", __name__, url_prefix="/api/v1/applications",
                      description="Applications of services on the Docker hosts")


class InstanceSchema(Schema):
    name = fields.Str()
    slot = fields.Int()
    revision = fields.Int()
    host_id = fields.Int(allow_none=True)
    host_port = fields.Int(allow_none=True)
    state = fields.Str()
    health = fields.Str(allow_none=True)
    cpu_percent = fields.Float(allow_none=True)
    pulled_from = fields.Str(allow_none=True, metadata={
        "description": "the registry its image was pulled from: a mirror's name or primary"})


class AutoscalingSchema(Schema):
    """What the autoscaler keeps: average CPU near the target, within min..max replicas."""

    enabled = fields.Bool()
    min_replicas = fields.Int()
    max_replicas = fields.Int()
    target_cpu_percent = fields.Float()
    cpu_basis = fields.Str(metadata={"description": "limit: 100% is the service's CPU limit; "
                                                    "core: 100% is one core"})
    scale_up_factor = fields.Float()
    cooldown_s = fields.Int(metadata={"description": "after a scale-up, judge again after this"})
    scale_down_stabilization_s = fields.Int(metadata={
        "description": "scale down only to the highest replica count recommended this long"})
    tolerance = fields.Float(metadata={"description": "no change within ± this share of target"})
    last_decision = fields.Str(dump_only=True, allow_none=True)
    last_decided_at = UtcDateTime(dump_only=True, allow_none=True)
    last_scaled_at = UtcDateTime(dump_only=True, allow_none=True)


class AutoscalingChangeSchema(AutoscalingSchema):
    """The same fields, each optional: what is left out keeps its value."""


class ServiceSchema(Schema):
    name = fields.Str()
    image = fields.Str()
    replicas = fields.Int()
    revision = fields.Int()
    status = fields.Str(metadata={"description": (
        "pending, waiting (for dependencies), started, healthy; failed (gave up waiting for "
        "dependencies), failing (containers do not start), unschedulable (no host fits); "
        "stopping, stopped (teardown)")})
    status_detail = fields.Str(allow_none=True, metadata={
        "description": "why: what it waits for, the engine's error, the placement explanation"})
    endpoints = fields.List(fields.Str())
    autoscaling = fields.Nested(AutoscalingSchema, allow_none=True)
    instances = fields.Method("live_instances")
    # Where its instances may go, and how they are fenced.
    cluster = fields.Str(allow_none=True)
    pool = fields.Str(allow_none=True)
    idc = fields.Str(allow_none=True)
    min_cpus = fields.Float(allow_none=True)
    min_memory = fields.Int(allow_none=True)
    error_pattern = fields.Str(metadata={"description": "log lines counted as errors (canaries)"})
    metrics = fields.Dict(allow_none=True, metadata={"description": (
        "its Prometheus endpoint {port (0: its $PORT), path, histogram, status_label}; "
        "Prometheus scrapes its healthy instances through /api/v1/monitoring/targets")})
    capabilities = fields.List(fields.Str(), metadata={"description": "added back; all others dropped"})
    pids_limit = fields.Int()
    read_only = fields.Bool()
    host_network = fields.Function(lambda s: bool(s.ports), metadata={
        "description": "true for a service with a port: it shares its host's network, loopback included"})

    def live_instances(self, service):
        live = [i for i in service.instances if i.state != "removed"]
        return InstanceSchema(many=True).dump(sorted(live, key=lambda i: (i.slot, i.revision)))


class ApplicationSchema(Schema):
    name = fields.Str()
    project = fields.Function(lambda a: a.project.name, metadata={
        "description": "its admins and developers operate it, its guests see it"})
    created_at = UtcDateTime()
    deleting_since = UtcDateTime(allow_none=True, metadata={
        "description": "set while the application is torn down; it disappears when done"})
    services = fields.List(fields.Nested(ServiceSchema))


class ScaleSchema(Schema):
    replicas = fields.Int(required=True)


class EndpointsQuery(Schema):
    index = fields.Int(load_default=None, metadata={
        "description": "block until the endpoints' index passes this one"})
    wait = fields.Float(load_default=30.0, metadata={"description": "seconds, at most 60"})


class EndpointsSchema(Schema):
    service = fields.Str()
    index = fields.Int()
    endpoints = fields.List(fields.Str())


def viewed_application(name: str):
    """(the caller, the application) if the caller may see it: a member of its project or a
    system admin; to anybody else it does not exist (404)."""
    user = require_api_user()
    return user, access.check_visible(user, definitions.get_application(name))


def operated_application(name: str):
    """(the caller, the application) if the caller operates it: an admin or developer of its
    project, or a system admin; a guest gets 403."""
    user = require_api_user()
    return user, access.check_operator(user, definitions.get_application(name))


def viewed_service(name: str, service: str):
    user, _application = viewed_application(name)
    return user, workloads.get_service(name, service)


def operated_service(name: str, service: str):
    user, _application = operated_application(name)
    return user, workloads.get_service(name, service)


@blueprint.post("")
@blueprint.response(201, ApplicationSchema)
@blueprint.doc(requestBody={"content": {"application/json": {"schema": {
    "type": "object", "required": ["name", "services"],
    "properties": {"name": {"type": "string"}, "project": {
        "type": "string", "description": "the project it belongs to (default: the caller's "
                                         "only project, or `default` for a system admin)"},
        "services": {"type": "array", "items": {"type": "object"}}}}}}})
def create_application():
    """Define an application in a project (its admins and developers may) and deploy it in
    dependency order. A cycle, a missing dependency, any bad field or a project quota it
    would exceed is a 4xx before anything starts."""
    user = require_api_user()
    raw = request.get_json(silent=True)
    raw = raw if isinstance(raw, dict) else {}
    application = workloads.deploy(raw, actor=user.username, config=current_app.config["BERTH"],
                                   project=access.project_for_new(user, raw.get("project")))
    db.session.flush()
    return application


@blueprint.get("")
@blueprint.response(200, ApplicationSchema(many=True))
def list_applications():
    """The applications of the caller's projects (every one, for a system admin)."""
    return db.session.scalars(access.visible_applications(require_api_user())).all()


@blueprint.get("/<name>")
@blueprint.response(200, ApplicationSchema)
def get_application(name):
    return viewed_application(name)[1]


@blueprint.delete("/<name>")
@blueprint.response(202, ApplicationSchema)
def delete_application(name):
    """Tear the application down in reverse dependency order (what depends on a service
    stops before it). Answers at once; the application is listed, with `deleting_since`,
    until its last container is gone."""
    user, application = operated_application(name)
    return workloads.delete(application, actor=user.username)


@blueprint.patch("/<name>/services/<service>")
@blueprint.arguments(ScaleSchema)
@blueprint.response(200, ServiceSchema)
def scale_service(change, name, service):
    user, found = operated_service(name, service)
    return workloads.scale(found, change["replicas"], actor=user.username)


@blueprint.get("/<name>/services/<service>/autoscaling")
@blueprint.response(200, AutoscalingSchema)
def get_autoscaling(name, service):
    _user, found = viewed_service(name, service)
    if found.autoscaling is None:
        raise NotFound(f"{name}/{service} has no autoscaling policy")
    return found.autoscaling


@blueprint.put("/<name>/services/<service>/autoscaling")
@blueprint.arguments(AutoscalingChangeSchema(partial=True))
@blueprint.response(200, AutoscalingSchema)
def set_autoscaling(changes, name, service):
    """Create or change the policy; fields left out keep their value (or the default:
    enabled, 1-10 replicas at 50% of the CPU limit, x2 steps, 60 s cooldown, 300 s
    scale-down window, 10% tolerance). While enabled, the autoscaler owns the replicas."""
    user, found = operated_service(name, service)
    return autoscaling.set_policy(found, changes, actor=user.username)


@blueprint.delete("/<name>/services/<service>/autoscaling")
@blueprint.response(204)
def delete_autoscaling(name, service):
    user, found = operated_service(name, service)
    autoscaling.remove_policy(found, actor=user.username)


@blueprint.get("/<name>/services/<service>/endpoints")
@blueprint.arguments(EndpointsQuery, location="query")
@blueprint.response(200, EndpointsSchema)
def endpoints(query, name, service):
    """The healthy endpoints (host:port). With `index`, a blocking query: the answer comes
    when the list changes (its index passes the one given) or after `wait` seconds. When
    BERTH_MAX_BLOCKING_QUERIES already wait on this web process: 429, retry after a second."""
    found = _discover(name, service, query)
    return {"service": found.name, "index": found.endpoints_version,
            "endpoints": list(found.endpoints or [])}


@blueprint.get("/<name>/services/<service>/upstream")
@blueprint.arguments(EndpointsQuery, location="query")
@blueprint.doc(responses={"200": {
    "description": "an nginx upstream block; the X-Berth-Index header carries the index",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
def upstream(query, name, service):
    """The healthy endpoints as an nginx `upstream <application>-<service>` block, with the
    same blocking query as the endpoints: regenerate and reload nginx when the index moves."""
    found = _discover(name, service, query)
    text = render_upstream(name, found.name, list(found.endpoints or []), found.endpoints_version)
    return Response(text, mimetype="text/plain",
                    headers={"X-Berth-Index": str(found.endpoints_version)})


def _discover(name: str, service: str, query: dict):
    """The service, once its endpoints' index passes query["index"] (or the wait ends)."""
    _user, found = viewed_service(name, service)
    if query["index"] is not None and found.endpoints_version <= query["index"]:
        slots = current_app.extensions["berth.blocking_queries"]
        if not slots.acquire(blocking=False):
            raise TooManyRequests(
                "too many blocking queries wait on this web process; retry after a second "
                "(or ask without index for the current endpoints)", retry_after=1)
        try:
            found = workloads.wait_for_endpoints(found.id, query["index"], query["wait"])
        finally:
            slots.release()
    return found
