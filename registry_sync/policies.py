"""Replication policies: which repositories and tags go to which mirrors. `selects` is the
pure decision; the rest validates input and keeps the rows."""
from __future__ import annotations

import re
from fnmatch import fnmatchcase

from sqlalchemy import select

from berth import audit, db
from berth.errors import Conflict, InvalidInput, NotFound
from berth.models import Repository, Tag
from berth.models.registries import Registry, ReplicationPolicy
from berth.registry_auth import validate_project_name

FIELDS = ("projects", "repositories", "tags", "tags_regex", "on_push", "schedule_s",
          "propagate_deletes", "enabled")
MIN_SCHEDULE_S = 60  # a full comparison lists every tag: more often than a minute is waste


def selects(policy, repository: str, tag: str) -> bool:
    """Does `policy` send `repository` ("project/repo") at `tag`? Globs match case-sensitively,
    as registry names are lowercase anyway; a regex must match the whole tag."""
    project, _, rest = repository.partition("/")
    if not (fnmatchcase(project, policy.projects) and fnmatchcase(rest, policy.repositories)):
        return False
    if policy.tags_regex:
        return re.fullmatch(policy.tags, tag) is not None
    return fnmatchcase(tag, policy.tags)


def validate(raw: dict, *, partial: bool = False) -> dict:
    """Clean policy fields plus `mirrors` (Registry rows); InvalidInput says what to fix."""
    clean: dict = {}
    if not partial or "name" in raw:
        try:
            validate_project_name(str(raw.get("name") or ""))
        except ValueError as error:
            raise InvalidInput(str(error).replace("project name", "policy name")) from error
        clean["name"] = raw["name"]
    for key in ("projects", "repositories", "tags"):
        if key in raw or not partial:
            value = raw.get(key, "*")
            if not isinstance(value, str) or not value or len(value) > 255:
                raise InvalidInput(f"{key} must be a pattern of 1 to 255 characters, e.g. '*'")
            clean[key] = value
    for key in ("tags_regex", "on_push", "propagate_deletes", "enabled"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise InvalidInput(f"{key} must be true or false")
            clean[key] = raw[key]
    if "schedule_s" in raw:
        value = raw["schedule_s"]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < MIN_SCHEDULE_S):
            raise InvalidInput(f"schedule_s must be null or at least {MIN_SCHEDULE_S} seconds")
        clean["schedule_s"] = value
    if clean.get("tags_regex"):
        try:
            re.compile(clean.get("tags", raw.get("tags", "*")))
        except re.error as error:
            raise InvalidInput(f"tags is not a valid regular expression: {error}") from error
    if "mirrors" in raw or not partial:
        names = raw.get("mirrors") or []
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise InvalidInput("mirrors must list at least one mirror registry by name")
        found = {r.name: r for r in db.session.scalars(select(Registry).where(
            Registry.name.in_(names), Registry.role == "mirror"))}
        unknown = [n for n in names if n not in found]
        if unknown:
            raise InvalidInput(f"no such mirror: {', '.join(unknown)}", detail={"mirrors": unknown})
        clean["mirrors"] = [found[n] for n in dict.fromkeys(names)]
    return clean


def get_policy(name: str) -> ReplicationPolicy:
    policy = db.session.scalar(select(ReplicationPolicy).where(ReplicationPolicy.name == name))
    if policy is None:
        raise NotFound(f"no replication policy {name!r}")
    return policy


def list_policies() -> list[ReplicationPolicy]:
    return list(db.session.scalars(select(ReplicationPolicy).order_by(ReplicationPolicy.name)))


def create_policy(raw: dict, actor: str | None) -> ReplicationPolicy:
    clean = validate(raw)
    if db.session.scalar(select(ReplicationPolicy.id).where(
            ReplicationPolicy.name == clean["name"])) is not None:
        raise Conflict(f"replication policy {clean['name']!r} already exists")
    policy = ReplicationPolicy(**clean)
    db.session.add(policy)
    audit.record("replication.policy.create", f"created replication policy {policy.name}",
                 subject_type="replication_policy", subject=policy.name, actor=actor)
    return policy


def update_policy(name: str, raw: dict, actor: str | None) -> ReplicationPolicy:
    policy = get_policy(name)
    # A regex flag or a pattern alone is checked against the other half already stored.
    merged = {"tags": policy.tags, "tags_regex": policy.tags_regex, **raw}
    clean = validate({k: v for k, v in merged.items() if k != "name"}, partial=True)
    for key, value in clean.items():
        setattr(policy, key, value)
    audit.record("replication.policy.update", f"changed replication policy {name}",
                 subject_type="replication_policy", subject=name, actor=actor)
    return policy


def delete_policy(name: str, actor: str | None) -> None:
    db.session.delete(get_policy(name))
    audit.record("replication.policy.delete", f"deleted replication policy {name}",
                 subject_type="replication_policy", subject=name, actor=actor)


def catalogue_tags() -> list[tuple[str, str, str]]:
    """Every (repository, tag, digest) Berth knows the primary holds."""
    return [tuple(row) for row in db.session.execute(
        select(Repository.name, Tag.name, Tag.digest).join(Tag.repository)
        .order_by(Repository.name, Tag.name))]


def matching_tags(policy) -> list[tuple[str, str, str]]:
    return [row for row in catalogue_tags() if selects(policy, row[0], row[1])]
