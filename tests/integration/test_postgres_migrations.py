"""The same migrations on a real PostgreSQL server: up, down, up, and matching the models."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import berth.models  # noqa: F401
from berth import migrate
from berth.db import Base


def test_upgrade_downgrade_upgrade_on_postgresql(bed):
    url = bed.state["postgres_url"]
    engine = create_engine(url)
    try:
        migrate.upgrade(url)
        tables = set(inspect(engine).get_table_names())
        assert {"users", "memberships", "hosts", "container_instances"} <= tables
        migrate.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        migrate.upgrade(url)
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        migrate.downgrade(url, "base")
        engine.dispose()
