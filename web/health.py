"""/healthz: the web process is up and can reach its database."""
from flask import Blueprint
from sqlalchemy import text

from berth import db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:  # any database failure means "not healthy"
        return {"status": "unhealthy", "database": type(error).__name__}, 503
    return {"status": "ok", "database": "ok"}
