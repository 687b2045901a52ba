"""The web edge: HTML pages and the /api/v1 JSON API over Berth's service functions."""
from __future__ import annotations

import threading

from flask import Flask

from berth import db, vault
from berth.celery_app import configure_celery
from berth.config import Config


def create_app(config: Config | None = None) -> Flask:
    """Build the app. Connects to nothing: engines and brokers are reached on first use."""
    config = config or Config.from_env()
    app = Flask(__name__, instance_path=str(config.instance_dir))
    app.config.update(
        SECRET_KEY=config.secret_key,
        BERTH=config,
        TESTING=config.testing,
        API_TITLE="Berth",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    db.configure(config.database_url)
    vault.configure(config.secrets_keys)
    configure_celery(config)
    app.extensions["berth.blocking_queries"] = threading.BoundedSemaphore(config.max_blocking_queries)

    from web import (account, alerts, auth, editor, errors, events, health, hosts, metrics,
                     mirrors, navigation, pages, projects, registry, services, users)
    from web import security
    from web.extensions import api, csrf, login_manager

    login_manager.init_app(app)
    csrf.init_app(app)
    api.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    navigation.init_app(app)
    security.init_app(app, config)  # cookie flags, security headers, failed-login limits
    for area in (auth, pages, health, projects, events, registry, hosts, services, editor,
                 account, users, mirrors, alerts):
        app.register_blueprint(area.blueprint)

    from web.api_v1 import register_api

    register_api(api)
    _unit_of_work_per_request(app)
    return app


def _unit_of_work_per_request(app: Flask) -> None:
    """One transaction per request: committed when the answer is a success."""

    @app.after_request
    def _commit(response):
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response

    @app.teardown_appcontext
    def _remove(_exc):
        db.session.remove()
