"""Projects, members, robot accounts, repositories and tags."""
from __future__ import annotations

from dataclasses import asdict

from marshmallow import Schema, fields, validate

from berth import accounts, db
from berth.errors import InvalidInput, NotFound
from berth.models.projects import ROLES
from berth.projects import catalogue, registry_ops
from berth.projects import services as projects
from berth.workloads import quotas
from web.api_v1 import Blueprint, UtcDateTime
from web.auth import require_api_user

blueprint = Blueprint("projects_api", __name__, url_prefix="/api/v1/projects",
                      description="Projects, their members, robot accounts and images")


class QuotaSchema(Schema):
    cpus = fields.Float(allow_none=True, metadata={"description": "CPU cores (replicas x limit)"})
    memory = fields.Int(allow_none=True, metadata={"description": "bytes (replicas x limit)"})
    replicas = fields.Int(allow_none=True)


class ProjectSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True)
    public = fields.Bool(load_default=False)
    created_at = UtcDateTime(dump_only=True)
    quota = fields.Function(lambda p: {"cpus": p.quota_cpus, "memory": p.quota_memory,
                                       "replicas": p.quota_replicas}, dump_only=True,
                            metadata={"description": "null: no quota"})
    usage = fields.Function(lambda p: asdict(quotas.usage(p)), dump_only=True, metadata={
        "description": "what its applications ask for now: cpus, memory, replicas"})


class NewProjectSchema(ProjectSchema):
    admin = fields.Str(load_default=None, metadata={
        "description": "username of the first project admin (default: the creator)"})


class ProjectPatchSchema(Schema):
    public = fields.Bool()
    quota = fields.Nested(QuotaSchema, metadata={
        "description": "system admins only; a field left out stays, null lifts it"})


class MemberSchema(Schema):
    username = fields.Str(required=True)
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))


class RoleSchema(Schema):
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))


class NewRobotSchema(Schema):
    name = fields.Str(required=True)
    can_push = fields.Bool(load_default=False)


class RobotSchema(Schema):
    name = fields.Str()
    username = fields.Str()
    can_push = fields.Bool()
    created_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True)
    secret = fields.Str(metadata={"description": "only in the answer to creation; store it now"})


class TagSchema(Schema):
    name = fields.Str()
    digest = fields.Str()
    size = fields.Int(allow_none=True)
    pushed_at = UtcDateTime()
    pushed_by = fields.Str(allow_none=True)


class RepositorySchema(Schema):
    name = fields.Str()
    tags = fields.List(fields.Nested(TagSchema))


def _member_dict(membership) -> dict:
    return {"username": membership.user.username, "role": membership.role}


def _robot_dict(project, robot, secret: str | None = None) -> dict:
    data = {"name": robot.name, "username": projects.robot_username(project, robot.name),
            "can_push": robot.can_push, "created_at": robot.created_at, "revoked_at": robot.revoked_at}
    if secret:
        data["secret"] = secret
    return data


@blueprint.get("")
@blueprint.response(200, ProjectSchema(many=True))
def list_projects():
    return projects.visible_projects(require_api_user())


@blueprint.post("")
@blueprint.arguments(NewProjectSchema)
@blueprint.response(201, ProjectSchema)
def create_project(new):
    actor = require_api_user()
    admin = None
    if new["admin"]:
        admin = accounts.find_user(new["admin"])
        if admin is None:
            raise InvalidInput(f"unknown user {new['admin']!r} for admin")
    project = projects.create_project(new["name"], public=new["public"], actor=actor, admin=admin)
    db.session.flush()
    return project


@blueprint.get("/<name>")
@blueprint.response(200, ProjectSchema)
def get_project(name):
    return projects.get_visible_project(name, require_api_user())


@blueprint.patch("/<name>")
@blueprint.arguments(ProjectPatchSchema)
@blueprint.response(200, ProjectSchema)
def patch_project(patch, name):
    actor = require_api_user()
    project = projects.get_visible_project(name, actor)
    if "public" in patch:
        projects.set_public(project, patch["public"], actor=actor)
    if "quota" in patch:
        quotas.set_quota(project, actor=actor, **patch["quota"])
    return project


@blueprint.get("/<name>/members")
@blueprint.response(200, MemberSchema(many=True))
def list_members(name):
    project = projects.get_visible_project(name, require_api_user())
    return [_member_dict(m) for m in projects.members(project)]


@blueprint.post("/<name>/members")
@blueprint.arguments(MemberSchema)
@blueprint.response(201, MemberSchema)
def add_member(member, name):
    actor = require_api_user()
    project = projects.get_visible_project(name, actor)
    membership = projects.add_member(project, member["username"], member["role"], actor=actor)
    db.session.flush()
    return {"username": member["username"], "role": membership.role}


@blueprint.patch("/<name>/members/<username>")
@blueprint.arguments(RoleSchema)
@blueprint.response(200, MemberSchema)
def change_role(change, name, username):
    actor = require_api_user()
    project = projects.get_visible_project(name, actor)
    return _member_dict(projects.change_role(project, username, change["role"], actor=actor))


@blueprint.delete("/<name>/members/<username>")
@blueprint.response(204)
def remove_member(name, username):
    actor = require_api_user()
    projects.remove_member(projects.get_visible_project(name, actor), username, actor=actor)


@blueprint.get("/<name>/robots")
@blueprint.response(200, RobotSchema(many=True))
def list_robots(name):
    actor = require_api_user()
    project = projects.get_visible_project(name, actor)
    if not projects.can_manage(actor, project):
        return []
    return [_robot_dict(project, r) for r in projects.robots(project)]


@blueprint.post("/<name>/robots")
@blueprint.arguments(NewRobotSchema)
@blueprint.response(201, RobotSchema)
def create_robot(new, name):
    actor = require_api_user()
    project = projects.get_visible_project(name, actor)
    robot, secret = projects.create_robot(project, new["name"], can_push=new["can_push"], actor=actor)
    db.session.flush()
    return _robot_dict(project, robot, secret)


@blueprint.delete("/<name>/robots/<robot>")
@blueprint.response(204)
def revoke_robot(name, robot):
    actor = require_api_user()
    projects.revoke_robot(projects.get_visible_project(name, actor), robot, actor=actor)


@blueprint.get("/<name>/repositories")
@blueprint.response(200, RepositorySchema(many=True))
def list_repositories(name):
    project = projects.get_visible_project(name, require_api_user())
    return [{"name": r.name, "tags": catalogue.tags(r)} for r in catalogue.repositories(project)]


@blueprint.get("/<name>/repositories/<path:repository>/tags")
@blueprint.response(200, TagSchema(many=True))
def list_tags(name, repository):
    project = projects.get_visible_project(name, require_api_user())
    found = catalogue.find_repository(repository)
    if found is None or found.project_id != project.id:
        raise NotFound(f"no repository {repository!r} in project {name}")
    return catalogue.tags(found)


@blueprint.delete("/<name>/repositories/<path:repository>/tags/<tag>")
@blueprint.response(204)
def delete_tag(name, repository, tag):
    """Deletes the manifest the tag points at: every tag on that digest goes too."""
    actor = require_api_user()
    registry_ops.delete_tag(projects.get_visible_project(name, actor), repository, tag, actor=actor)
