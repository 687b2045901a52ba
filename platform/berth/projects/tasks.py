"""Celery tasks of the registry catalogue: thin wrappers, names in, one service call."""
from berth.celery_app import celery
from berth.projects import registry_ops


@celery.task(name="berth.projects.tasks.refresh_tag_size", autoretry_for=(Exception,),
             retry_backoff=True, max_retries=5)
def refresh_tag_size(repository: str, tag: str) -> dict:
    return {"repository": repository, "tag": tag, "size": registry_ops.refresh_size(repository, tag)}
