"""Clusters, pools and hosts. Reading is for anyone logged in; changes for system admins.

Answers are built from berth.hosts.overview rows, which hold no TLS material: a host says
`uses_tls` and nothing more.
"""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from berth import db
from berth.clock import utcnow
from berth.errors import NotFound
from berth.hosts import overview, services
from berth.models.inventory import ADMIN_STATES, LIVENESS
from web.api_v1 import ROW_ID, Blueprint, UtcDateTime
from web.auth import require_api_user
from web.hosts import (DISK_TYPES, HOST_NAME, HOST_NAME_RULE, engine_connect, require_admin,
                       staleness)

blueprint = Blueprint("hosts_api", __name__, url_prefix="/api/v1",
                      description="The host inventory: clusters, pools, hosts")

class TlsSchema(Schema):
    # Not required one by one: check_tls says which part is missing, in one clear message.
    ca = fields.Str(load_default="", metadata={"description": "CA certificate, PEM"})
    cert = fields.Str(load_default="", metadata={"description": "client certificate, PEM"})
    key = fields.Str(load_default="", metadata={"description": "client private key, PEM (unencrypted)"})


class NewHostSchema(Schema):
    name = fields.Str(required=True, validate=[validate.Length(max=128), validate.Regexp(
        HOST_NAME, error=f"a host name is {HOST_NAME_RULE}")])
    endpoint = fields.Str(required=True, metadata={"description": "unix://... or tcp://host:port"})
    cluster = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    pool = fields.Str(load_default="default", validate=validate.Length(min=1, max=64))
    idc = fields.Str(load_default="default", validate=validate.Length(min=1, max=64))
    labels = fields.Dict(keys=fields.Str(), values=fields.Str(), load_default=dict,
                         metadata={"description": "placement labels, e.g. {\"disk\": \"ssd\"}"})
    port_range_start = fields.Int(load_default=20000)
    port_range_end = fields.Int(load_default=29999)
    disk_type = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(DISK_TYPES))
    disk_gb = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=1))
    tls = fields.Nested(TlsSchema, load_default=None, allow_none=True, metadata={
        "description": "all three PEM texts or none; stored as a secret, never returned"})


class HostPatchSchema(Schema):
    admin_state = fields.Str(validate=validate.OneOf(ADMIN_STATES))
    labels = fields.Dict(keys=fields.Str(), values=fields.Str(),
                         metadata={"description": "replaces all labels"})
    idc = fields.Str(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _something(self, data, **_kwargs):
        if not data:
            raise ValidationError("give admin_state, labels or idc")


class HostQuerySchema(Schema):
    cluster = fields.Str()
    pool = fields.Str()
    liveness = fields.Str(validate=validate.OneOf(LIVENESS), metadata={
        "description": "the recorded liveness; `alive` in the answer also checks the heartbeat"})


class HostSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    cluster = fields.Str()
    pool = fields.Str()
    idc = fields.Str()
    endpoint = fields.Str()
    uses_tls = fields.Bool()
    labels = fields.Dict(keys=fields.Str(), values=fields.Str())
    liveness = fields.Str(metadata={"description": "unknown, up or down, from the last probes"})
    alive = fields.Bool(metadata={"description": "up and heard from within 3 probe intervals"})
    status = fields.Str(metadata={"description": "liveness, or `stale` if up but not heard from"})
    last_heartbeat_at = UtcDateTime(allow_none=True)
    heartbeat_age_s = fields.Float(allow_none=True)
    cpus = fields.Float(allow_none=True)
    memory = fields.Int(allow_none=True, metadata={"description": "bytes"})
    placed_cpus = fields.Float()
    placed_memory = fields.Int(metadata={"description": "bytes"})
    admin_state = fields.Str()
    last_error = fields.Str(allow_none=True)
    kernel = fields.Str(allow_none=True)
    engine_version = fields.Str(allow_none=True)
    disk_type = fields.Str(allow_none=True)
    disk_gb = fields.Int(allow_none=True)
    port_range_start = fields.Int()
    port_range_end = fields.Int()


class PoolSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    up = fields.Int()
    down = fields.Int()
    total = fields.Int()


class ClusterSchema(PoolSchema):
    description = fields.Str()
    pools = fields.List(fields.Nested(PoolSchema))


def _row(host_id: int) -> overview.HostRow:
    row = overview.host_row(host_id, utcnow(), staleness())
    if row is None:
        raise NotFound(f"no host with id {host_id}")
    return row


@blueprint.get("/hosts")
@blueprint.arguments(HostQuerySchema, location="query")
@blueprint.response(200, HostSchema(many=True))
def list_hosts(query):
    require_api_user()
    return overview.host_rows(utcnow(), staleness(), **query)


@blueprint.post("/hosts")
@blueprint.arguments(NewHostSchema)
@blueprint.response(201, HostSchema)
def add_host(new):
    """Register a host once its engine answers (checked within 5 s); 400 if it does not."""
    actor = require_api_user()
    require_admin(actor)
    tls = new["tls"] or {}
    host = services.add_host(
        new["name"], new["endpoint"], cluster=new["cluster"], pool=new["pool"], idc=new["idc"],
        labels=services.check_labels(new["labels"]),
        tls=services.check_tls(tls.get("ca"), tls.get("cert"), tls.get("key")),
        port_range=(new["port_range_start"], new["port_range_end"]),
        disk_type=new["disk_type"], disk_gb=new["disk_gb"], actor=actor.username,
        connect=engine_connect())
    db.session.flush()
    return _row(host.id)


@blueprint.get(f"/hosts/<{ROW_ID}:host_id>")
@blueprint.response(200, HostSchema)
def get_host(host_id):
    require_api_user()
    return _row(host_id)


@blueprint.patch(f"/hosts/<{ROW_ID}:host_id>")
@blueprint.arguments(HostPatchSchema)
@blueprint.response(200, HostSchema)
def patch_host(patch, host_id):
    actor = require_api_user()
    require_admin(actor)
    host = services.get_host(host_id)
    if "admin_state" in patch:
        services.set_admin_state(host, patch["admin_state"], actor=actor.username)
    services.update_host(host, labels=patch.get("labels"), idc=patch.get("idc"),
                         actor=actor.username)
    db.session.flush()
    return _row(host.id)


@blueprint.get("/clusters")
@blueprint.response(200, ClusterSchema(many=True))
def list_clusters():
    """Clusters, their pools and host counts; `up` counts hosts heard from recently."""
    require_api_user()
    return overview.cluster_tree(utcnow(), staleness())
