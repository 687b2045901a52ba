"""Registries (the primary and its mirrors), replication policies and sync jobs: system
administrators only. A registry's CA bundle is never returned, only whether one is set."""
from flask import current_app
from marshmallow import Schema, fields, validate

from berth import db
from berth.errors import Forbidden, InvalidInput
from registry_sync import jobs, lag, policies, registries
from web.api_v1 import ROW_ID, Blueprint, UtcDateTime
from web.auth import require_api_user

blueprint = Blueprint("registries_api", __name__, url_prefix="/api/v1",
                      description="Registry mirrors, replication policies and sync jobs")


def require_admin() -> str:
    user = require_api_user()
    if not user.is_admin:
        raise Forbidden("only system administrators may see and change registries")
    return user.username


def probe() -> registries.Probe:
    """Tests put a fake in app.config["BERTH_REGISTRY_PROBE"], as BERTH_ENGINE_CONNECT for hosts."""
    return current_app.config.get("BERTH_REGISTRY_PROBE") or registries.http_probe


class NewRegistrySchema(Schema):
    name = fields.Str(required=True)
    url = fields.Str(required=True, metadata={"description": "http(s)://host:port, no path"})
    idc = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=64))
    role = fields.Str(load_default="mirror", validate=validate.OneOf(("primary", "mirror")))
    tls_verify = fields.Bool(load_default=True)
    ca_bundle = fields.Str(load_default=None, allow_none=True,
                           metadata={"description": "PEM; never returned"})
    service = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=128),
                         metadata={"description": "token audience; default berth-mirror-NAME"})


class LagSchema(Schema):
    missing = fields.Int()
    outdated = fields.Int()
    deletable = fields.Int()
    in_sync = fields.Int()


class RegistrySchema(Schema):
    id = fields.Int()
    name = fields.Str()
    url = fields.Str()
    role = fields.Str()
    idc = fields.Str(allow_none=True)
    service = fields.Str(allow_none=True)
    tls_verify = fields.Bool()
    ca_bundle = fields.Function(lambda r: "set" if r.ca_bundle else None,
                                metadata={"description": "\"set\" or null"})
    healthy = fields.Bool(allow_none=True)
    last_checked_at = UtcDateTime(allow_none=True)
    last_error = fields.Str(allow_none=True)
    lag = fields.Function(lambda r: lag.lag(r) if r.role == "mirror" else None,
                          metadata={"description": "tags behind the primary; null for it"})


class JobSchema(Schema):
    id = fields.Int()
    registry = fields.Function(lambda j: j.mirror.name)
    policy_id = fields.Int(allow_none=True)
    trigger = fields.Str()
    repository = fields.Str(allow_none=True)
    status = fields.Str()
    actor = fields.Str(allow_none=True)
    tags_total = fields.Int()
    tags_done = fields.Int()
    tags_deleted = fields.Int()
    blobs_total = fields.Int()
    blobs_done = fields.Int()
    bytes_total = fields.Int()
    bytes_sent = fields.Int()
    cancel_requested = fields.Bool()
    error = fields.Str(allow_none=True)
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)


class SyncRequestSchema(Schema):
    repository = fields.Str(load_default=None, allow_none=True,
                            metadata={"description": "project/repo; null: all selected"})


class JobQuerySchema(Schema):
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))


class PolicyInputSchema(Schema):
    # Checked by registry_sync.policies.validate, whose messages say what to fix.
    name = fields.Str()
    projects = fields.Str()
    repositories = fields.Str()
    tags = fields.Str()
    tags_regex = fields.Bool()
    on_push = fields.Bool()
    schedule_s = fields.Int(allow_none=True)
    propagate_deletes = fields.Bool()
    enabled = fields.Bool()
    mirrors = fields.List(fields.Str())


class PolicySchema(PolicyInputSchema):
    id = fields.Int()
    mirrors = fields.Function(lambda p: [m.name for m in p.mirrors])
    last_scheduled_at = UtcDateTime(allow_none=True)


class PolicyAnswerSchema(PolicySchema):
    matches = fields.Int(metadata={"description": "catalogue tags the policy selects now"})
    warning = fields.Str(allow_none=True)


class _Answer:
    """A policy as saved, plus how many catalogue tags it selects now (0 earns a warning)."""

    def __init__(self, policy):
        self.policy = policy
        self.matches = len(policies.matching_tags(policy))
        self.warning = None if self.matches else (
            "the policy matches no tag in the catalogue: check its patterns (it is saved)")

    def __getattr__(self, name):
        return getattr(self.policy, name)


@blueprint.get("/registries")
@blueprint.response(200, RegistrySchema(many=True))
def list_registries():
    require_admin()
    return registries.list_registries()


@blueprint.post("/registries")
@blueprint.arguments(NewRegistrySchema)
@blueprint.response(201, RegistrySchema)
def add_registry(new):
    """Register a registry once it answers GET /v2/ (200 or 401); 400 if it does not."""
    actor = require_admin()
    registry = registries.add_registry(**new, actor=actor, probe=probe())
    db.session.flush()
    return registry


@blueprint.delete("/registries/<name>")
@blueprint.response(204)
def remove_registry(name):
    registries.remove_registry(name, require_admin())


@blueprint.post("/registries/<name>/sync")
@blueprint.arguments(SyncRequestSchema)
@blueprint.response(202, JobSchema)
def sync_registry(request_, name):
    """Queue a sync of this mirror (or reuse the one already queued)."""
    actor = require_admin()
    registry = registries.get_registry(name)
    if registry.role != "mirror":
        raise InvalidInput(f"{name} is the primary: only mirrors are synced")
    return jobs.request_sync(registry, trigger="manual", actor=actor,
                             repository=request_["repository"])


@blueprint.get("/sync-jobs")
@blueprint.arguments(JobQuerySchema, location="query")
@blueprint.response(200, JobSchema(many=True))
def list_jobs(query):
    require_admin()
    return jobs.recent_jobs(query["limit"])


@blueprint.post(f"/sync-jobs/<{ROW_ID}:job_id>/cancel")
@blueprint.response(200, JobSchema)
def cancel_job(job_id):
    return jobs.cancel(job_id, require_admin())


@blueprint.get("/replication-policies")
@blueprint.response(200, PolicySchema(many=True))
def list_policies():
    require_admin()
    return policies.list_policies()


@blueprint.post("/replication-policies")
@blueprint.arguments(PolicyInputSchema)
@blueprint.response(201, PolicyAnswerSchema)
def create_policy(raw):
    policy = policies.create_policy(raw, require_admin())
    db.session.flush()
    return _Answer(policy)


@blueprint.patch("/replication-policies/<name>")
@blueprint.arguments(PolicyInputSchema)
@blueprint.response(200, PolicyAnswerSchema)
def update_policy(raw, name):
    policy = policies.update_policy(name, raw, require_admin())
    db.session.flush()
    return _Answer(policy)


@blueprint.delete("/replication-policies/<name>")
@blueprint.response(204)
def delete_policy(name):
    policies.delete_policy(name, require_admin())
