"""Fixtures shared by every test: a migrated SQLite database per test and a web app on it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from berth import db, migrate, vault
from berth.config import Config
from tests.support import basic_auth


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing():
    """Real hashing, at a test-friendly cost (scrypt's 100 ms per check would dominate)."""
    from berth import accounts

    accounts.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    yield


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """Run the real migrations once; each test gets a copy of the result."""
    path = tmp_path_factory.mktemp("template") / "berth.sqlite"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def config(tmp_path, migrated_template) -> Config:
    instance = tmp_path / "instance"
    instance.mkdir()
    shutil.copy(migrated_template, instance / "berth.sqlite")
    return Config.from_env(
        {"BERTH_INSTANCE": str(instance)}, testing=True,
    )


@pytest.fixture
def database(config):
    """A session on this test's own database, committed or rolled back by the test."""
    db.configure(config.database_url)
    vault.configure(config.secrets_keys)
    yield db.session
    db.session.remove()


@pytest.fixture
def app(config):
    from web import create_app

    app = create_app(config)
    yield app
    db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin(app):
    from berth import accounts

    with app.app_context(), db.unit_of_work():
        accounts.ensure_admin("admin-password")
    return basic_auth("admin", "admin-password")
