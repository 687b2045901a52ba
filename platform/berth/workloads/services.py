"""Operator actions on applications: define, scale, tear down; and discovery's answers."""
from __future__ import annotations

import time

from berth import audit, db
from berth.celery_app import enqueue
from berth.clock import utcnow
from berth.config import Config
from berth.errors import Conflict, InvalidInput, NotFound
from berth.models import Application, Service
from berth.workloads import definitions, quotas
from berth.workloads.definitions import MAX_REPLICAS


def check_images_exist(application: Application, config: Config) -> None:
    """An image in Berth's registry must exist before anything starts (a typo is a 400),
    and be the application's project's own or a public project's."""
    for service in application.services:
        check_image_exists(service.name, service.image, config, application)


def check_image_exists(service: str, image: str, config: Config, application: Application) -> None:
    from berth.projects import registry_ops
    from berth.projects.services import find_project

    registry, _, path = image.partition("/")
    if registry != config.registry_host:
        return  # another registry: the engine's pull will tell
    owner = find_project(path.partition("/")[0])
    if owner is not None and not owner.public and owner.id != application.project_id:
        raise InvalidInput(f"service {service}: image {image} is in the private project "
                           f"{owner.name}; application {application.name} (project "
                           f"{application.project.name}) may use its own project's images and "
                           f"public ones")
    repository, _, reference = path.partition("@") if "@" in path else path.rpartition(":")
    if registry_ops.client(config).manifest(repository, reference) is None:
        raise InvalidInput(f"service {service}: image {image} does not exist "
                           f"in the registry (check the repository and tag)")


def deploy(raw: dict, *, actor: str, config: Config | None = None, project=None) -> Application:
    from berth.workloads.tasks import deploy_application

    application = definitions.create_application(raw, actor=actor, project=project)
    if config is not None:
        check_images_exist(application, config)
    application.deploy_started_at = utcnow()
    db.session.flush()
    enqueue(deploy_application, application.id)
    return application


def delete(application: Application, *, actor: str) -> Application:
    """Ask for a teardown: passes remove the services dependents first, then the
    application itself. Asking again while it runs changes nothing."""
    from berth.workloads.tasks import deploy_application

    if application.deleting_since is None:
        application.deleting_since = application.deploy_started_at = utcnow()
        audit.record("application.teardown", f"tearing down application {application.name}",
                     subject_type="application", subject=application.name, actor=actor)
    enqueue(deploy_application, application.id)
    return application


def get_service(app_name: str, service_name: str) -> Service:
    application = definitions.get_application(app_name)
    service = next((s for s in application.services if s.name == service_name), None)
    if service is None:
        raise NotFound(f"application {app_name} has no service {service_name!r}")
    return service


def scale(service: Service, replicas: int, *, actor: str, reason: str | None = None) -> Service:
    """Set the desired replicas and start a deploy pass; `reason` goes into the event."""
    from berth.workloads.tasks import deploy_application

    if service.application.deleting_since is not None:
        raise Conflict(f"application {service.application.name} is being torn down")
    if not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise InvalidInput(f"replicas must be a whole number from 0 to {MAX_REPLICAS}")
    from berth.workloads.releases import active_release

    release = active_release(service)
    if release is not None and replicas != service.replicas:
        raise Conflict(f"{service.application.name}/{service.name} is being released "
                       f"(release {release.id}, {release.status}); scale it once the release is over")
    if replicas > service.replicas:
        quotas.check(service.application.project,
                     quotas.of_service(replicas - service.replicas, service.cpus, service.memory),
                     f"scaling {service.application.name}/{service.name} to {replicas}")
    if replicas != service.replicas:
        subject = f"{service.application.name}/{service.name}"
        audit.record("service.scale", f"{subject}: {service.replicas} -> {replicas} replicas"
                     + (f" ({reason})" if reason else ""), subject_type="service",
                     subject=subject, actor=actor, replicas=replicas, previous=service.replicas)
        service.replicas = replicas
        service.application.deploy_started_at = utcnow()
        enqueue(deploy_application, service.application_id)
    return service


def wait_for_endpoints(service_id: int, after_version: int, timeout_s: float,
                       poll_s: float = 0.25) -> Service:
    """A blocking query: returns once the endpoints' version passes `after_version`, or at
    the timeout (then unchanged). Reads fresh each time; holds no transaction between."""
    deadline = time.monotonic() + max(0.0, min(timeout_s, 60.0))
    while True:
        db.session.rollback()
        service = db.session.get(Service, service_id)
        if service is None:
            raise NotFound("the service was deleted")
        if service.endpoints_version > after_version or time.monotonic() >= deadline:
            return service
        time.sleep(poll_s)
