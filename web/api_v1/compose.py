"""Applications from a Docker Compose file, and apply: a whole definition (JSON or Compose)
made true of an application, idempotently, or only planned (dry run)."""
from __future__ import annotations

from flask import current_app, request
from marshmallow import Schema, fields

from berth import db
from berth.errors import InvalidInput
from berth.workloads import access, compose, definitions
from berth.workloads import apply as applying
from berth.workloads import services as workloads
from web.api_v1 import Blueprint
from web.api_v1.applications import ApplicationSchema, operated_application
from web.auth import require_api_user

blueprint = Blueprint("compose_api", __name__, url_prefix="/api/v1/applications",
                      description="Applications defined by a Compose file, and apply")

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_COMPOSE_BODY = {"type": "string", "description": "a Docker Compose file (the subset Berth "
                                                  "honours; anything else is refused by name)"}
_JSON_BODY = {"type": "object", "properties": {
    "compose": {"type": "string", "description": "a Compose file, instead of services"},
    "name": {"type": "string"}, "project": {"type": "string"},
    "services": {"type": "array", "items": {"type": "object"}},
    "update_config": {"type": "object", "description": "service name -> Compose update_config, "
                                                       "for the releases an apply starts"}}}
REQUEST_BODY = {"requestBody": {"required": True, "content": {
    **{kind: {"schema": _COMPOSE_BODY} for kind in YAML_TYPES},
    "application/json": {"schema": _JSON_BODY}}}}


class ComposeQuery(Schema):
    name = fields.Str(load_default=None, metadata={
        "description": "the application's name (over the file's top-level name, as "
                       "`docker compose -p`)"})
    project = fields.Str(load_default=None, metadata={"description": "the project it goes in"})


class ApplyQuery(Schema):
    dry_run = fields.Bool(load_default=False, metadata={
        "description": "act on nothing: answer what would change, and where each new "
                       "container would be placed and why"})
    project = fields.Str(load_default=None, metadata={
        "description": "the project, if the application is new"})


class PlacementSchema(Schema):
    host = fields.Str(allow_none=True, metadata={"description": "null: no host fits"})
    explanation = fields.Str()


class ChangeSchema(Schema):
    service = fields.Str()
    replicas = fields.Dict(allow_none=True, metadata={
        "description": "{from, to}: a scale (from 0: a new service)"})
    changes = fields.Dict(metadata={"description": "revision field -> {from, to}: a release"})
    release = fields.Int(allow_none=True, metadata={"description": "the release started"})
    note = fields.Str(allow_none=True)
    placements = fields.List(fields.Nested(PlacementSchema), metadata={
        "description": "dry run: where each new container would go now, and why"})


class ApplyResultSchema(Schema):
    application = fields.Str()
    created = fields.Bool()
    dry_run = fields.Bool()
    changed = fields.List(fields.Nested(ChangeSchema))
    unchanged = fields.List(fields.Str())
    notes = fields.List(fields.Str())
    levels = fields.List(fields.List(fields.Str()), metadata={
        "description": "the services in the order they start, level by level"})


class CheckResultSchema(Schema):
    definition = fields.Dict(metadata={"description": "the Berth definition of the file"})
    levels = fields.List(fields.List(fields.Str()))


def read_definition(name: str | None = None, project: str | None = None, *,
                    default_name: str | None = None) -> dict:
    """The request body as a Berth definition: a Compose file (YAML), JSON with `compose`,
    or a JSON definition. `name` overrides the file's name, `default_name` does not."""
    if request.mimetype in YAML_TYPES:
        return compose.parse(request.get_data(as_text=True), name=name, project=project,
                             default_name=default_name)
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        raise InvalidInput("send a Compose file (Content-Type: application/yaml) or a JSON "
                           "object: a definition, or {\"compose\": \"<yaml>\", \"name\": ...}")
    if "compose" in raw:
        extra = sorted(set(raw) - {"compose", "name", "project"})
        if extra:
            raise InvalidInput(f"with compose, give only name and project (not {', '.join(extra)})")
        return compose.parse(raw["compose"], name=raw.get("name", name),
                             project=raw.get("project", project), default_name=default_name)
    return raw


def _create(raw: dict, user):
    return workloads.deploy(raw, actor=user.username, config=current_app.config["BERTH"],
                            project=access.project_for_new(user, raw.get("project")))


@blueprint.post("/compose")
@blueprint.arguments(ComposeQuery, location="query")
@blueprint.response(201, ApplicationSchema)
@blueprint.doc(**REQUEST_BODY)
def create_from_compose(query):
    """Define an application from a Compose file and deploy it, as `POST /applications`
    does with JSON. Each published port becomes Berth's `port: true` (a host port Berth
    allocates, passed as $PORT); what Berth cannot honour is a 400 naming the field."""
    user = require_api_user()
    application = _create(read_definition(query["name"], query["project"]), user)
    db.session.flush()
    return application


@blueprint.post("/compose/check")
@blueprint.arguments(ComposeQuery, location="query")
@blueprint.response(200, CheckResultSchema)
@blueprint.doc(**REQUEST_BODY)
def check_compose(query):
    """Convert and check a Compose file, storing nothing: the Berth definition it makes and
    the order its services start in, or a 400 naming the first field Berth cannot take."""
    require_api_user()
    definition = read_definition(query["name"], query["project"])
    _name, _specs, levels = definitions.parse_application(definition)
    return {"definition": definition, "levels": levels}


@blueprint.put("/<name>")
@blueprint.arguments(ApplyQuery, location="query")
@blueprint.response(200, ApplyResultSchema)
@blueprint.doc(**REQUEST_BODY)
def apply_application(query, name):
    """Make application `name` what the definition says: create it if missing; else, per
    service, scale what changed in replicas and release what changed in image, command,
    environment, cpus, memory or healthcheck (with the service's update_config). Applying
    the same again changes nothing. Adding or removing services, or changing others of
    their fields, is a 409 (tear down and apply again). With dry_run, nothing is done."""
    user = require_api_user()
    raw = read_definition(None, query["project"], default_name=name)
    if raw.get("name", name) != name:
        raise InvalidInput(f"the definition names {raw.get('name')!r}, the URL {name!r}")
    if query["project"] is not None:
        if raw.get("project", query["project"]) != query["project"]:
            raise InvalidInput(f"the definition's project is {raw['project']!r}, the query's "
                               f"{query['project']!r}")
        raw = {**raw, "project": query["project"]}
    raw = {**raw, "name": name}
    config = current_app.config["BERTH"]
    existing = definitions.find_application(name)
    if existing is None:
        if query["dry_run"]:
            return applying.plan_new(raw, config=config,
                                     project=access.project_for_new(user, raw.get("project")))
        _create(raw, user)
        db.session.flush()
        return applying.plan_new(raw, dry_run=False)
    _user, application = operated_application(name)
    return applying.apply_existing(application, raw, actor=user.username, config=config,
                                   dry_run=query["dry_run"])
