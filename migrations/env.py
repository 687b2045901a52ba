"""Alembic environment: the URL comes from Berth's Config (or the caller), never the ini."""
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

import berth.models  # noqa: F401  (registers every table on the metadata)
from berth.config import Config
from berth.db import Base

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Config.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = create_engine(database_url())
    with connectable.connect() as connection:
        # Batch mode rewrites tables on SQLite, which cannot ALTER most constraints.
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
