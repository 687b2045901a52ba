"""Migrations tell one story: a single head, reversible, and matching the models."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import berth.models  # noqa: F401
from berth import migrate
from berth.db import Base


def test_exactly_one_head():
    assert len(migrate.heads()) == 1


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    migrate.upgrade(url)
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"users", "projects", "hosts", "services", "events"} <= tables
    migrate.downgrade(url, "base")
    assert set(inspect(create_engine(url)).get_table_names()) == {"alembic_version"}
    migrate.upgrade(url)
    assert set(inspect(create_engine(url)).get_table_names()) == tables


def test_migrations_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    migrate.upgrade(url)
    with create_engine(url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models and migrations differ; write a revision: {diff}"


def test_existing_applications_move_into_the_default_project(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'apps.sqlite'}"
    migrate.upgrade(url, "0009")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO applications (name, created_at) "
                                   "VALUES ('shop', '2026-12-01 10:00:00'), ('blog', '2026-12-01 10:00:00')"))
    migrate.upgrade(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT a.name, p.name, p.public FROM applications a JOIN projects p ON p.id = a.project_id "
            "ORDER BY a.name")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("blog", "default", 0), ("shop", "default", 0)]
