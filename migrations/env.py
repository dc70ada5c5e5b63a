"""Alembic environment for diversion, run through Flask-Migrate.

Migrations run as the database owner: ``DATABASE_OWNER_URL`` when it is set
(PostgreSQL in production: the app's own role must not own the tables, or
row-level security would not bind it), otherwise the app's own database.
"""

import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import create_engine

import diversion.models  # noqa: F401 - every table on the metadata

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")
target_db = current_app.extensions["migrate"].db


def _engine():
    owner_url = current_app.config.get("DATABASE_OWNER_URL")
    return create_engine(owner_url) if owner_url else target_db.engine


def _skip_empty_autogenerate(_context, _revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


@contextmanager
def _rebuilding_sqlite_tables(connection):
    """On SQLite, foreign keys go unchecked while the migrations run, then every one is checked.

    SQLite changes a table's constraints by building it anew and dropping the old one
    (alembic's batch mode); with its foreign keys enforced, dropping a table that other rows
    point at is refused. SQLite's own procedure turns them off, outside any transaction, and
    checks them all before turning them on again; a row left pointing nowhere fails the run."""
    driver = connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
    if driver is None:
        yield
        return
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"rows point at rows that are not there after the migrations: {broken[:5]}")
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def run_migrations_offline():
    context.configure(
        url=str(_engine().url), target_metadata=target_db.metadata, literal_binds=True,
        render_as_batch=True, compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    options = dict(current_app.extensions["migrate"].configure_args)
    options.setdefault("process_revision_directives", _skip_empty_autogenerate)
    options.setdefault("render_as_batch", True)
    options.setdefault("compare_type", True)
    engine = _engine()
    try:
        with engine.connect() as connection, _rebuilding_sqlite_tables(connection):
            context.configure(connection=connection, target_metadata=target_db.metadata, **options)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if engine is not target_db.engine:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
