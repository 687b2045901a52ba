"""What Berth itself does in the registry on a person's behalf: deleting tags, sizing images."""
from __future__ import annotations

from berth import db
from berth.celery_app import settings
from berth.clock import utcnow
from berth.config import Config
from berth.errors import Forbidden, NotFound
from berth.models import Project, User
from berth.projects import catalogue
from berth.projects.registry_access import key_directory, signing_key
from berth.projects.services import can_change_images
from berth.registry_auth import issue_token
from berth.registry_client import RegistryClient, image_size

SERVICE_SUBJECT = "berth"  # who the registry sees when Berth acts itself


def client(config: Config) -> RegistryClient:
    def token_source(access):
        return issue_token(signing_key(key_directory(config)), issuer=config.token_issuer,
                           audience=config.registry_service, subject=SERVICE_SUBJECT,
                           access=access, lifetime_s=60, now=utcnow()).token

    return RegistryClient(config.registry_url, token_source)


def delete_tag(project: Project, repository_name: str, tag: str, *, actor: User,
               config: Config | None = None) -> None:
    """Delete the manifest `tag` points at (so every tag on that digest goes too)."""
    if not can_change_images(actor, project):
        raise Forbidden(f"only admins and developers of {project.name} may delete images")
    repository = catalogue.find_repository(repository_name)
    if repository is None or repository.project_id != project.id:
        raise NotFound(f"no repository {repository_name!r} in project {project.name}")
    row = next((t for t in catalogue.tags(repository) if t.name == tag), None)
    if row is None:
        raise NotFound(f"no tag {tag!r} in {repository_name}")
    digest = row.digest
    db.session.rollback()  # hold no transaction while the registry works
    client(config or settings()).delete_manifest(repository_name, digest)
    # The registry's notification says the same; recording it now keeps the page current.
    catalogue.record_delete(repository_name, digest, actor=actor.username, addr=None)


def apply_notification(envelope: dict) -> None:
    """The webhook: update the catalogue now, read pushed images' sizes in the worker."""
    from berth.celery_app import enqueue
    from berth.projects.tasks import refresh_tag_size
    from registry_sync.jobs import on_notification

    pushed = catalogue.apply_notification(envelope, own_subject=SERVICE_SUBJECT)
    for repository, tag in pushed:
        enqueue(refresh_tag_size, repository, tag)
    on_notification(envelope, pushed)  # mirrors whose policies want these images


def refresh_size(repository_name: str, tag: str, config: Config | None = None) -> int | None:
    found = client(config or settings()).manifest(repository_name, tag)
    if found is None:
        return None
    digest, manifest = found
    size = image_size(manifest)
    if size is not None:
        catalogue.set_size(repository_name, tag, digest, size)
    return size
