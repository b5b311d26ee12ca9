"""Alembic environment: the target is `SQLModel.metadata` from `schemas.tables`.

The URL comes from the caller (`core.migrate.upgrade_database` passes it in
`config.attributes["database_url"]`) or else from the application settings, never from
alembic.ini, and is switched to a synchronous driver with `core.db.sync_url`.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import schemas.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from core.db import sync_url
from core.migrate import ensure_sqlite_parent, include_name
from core.settings import Settings
from schemas.tables import DecimalString, UTCDateTime

config = context.config

# Called from the command line: configure logging from alembic.ini. Called from the
# application (`core.migrate`), leave the process's logging alone.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = SQLModel.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or Settings().resolved_database_url
    return sync_url(url)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render the application's column types as the plain SQLAlchemy types they store as.

    A revision must keep working when the Python types move or change, so it never imports
    application code: `UTCDateTime` is a timezone-aware timestamp in the database,
    `DecimalString` a VARCHAR holding the decimal's text and SQLModel's `AutoString` a VARCHAR.
    """
    if type_ == "type":
        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(obj, DecimalString):
            return f"sa.String(length={DecimalString.length})"
        if isinstance(obj, AutoString):
            return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _configure_args() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # Batch operations let SQLite alter tables (it copies and renames); on PostgreSQL the
        # same blocks run as plain ALTERs, so every revision works on both databases no
        # matter which one it was generated against.
        "render_as_batch": True,
        "render_item": render_item,
        "compare_type": True,
        "include_name": include_name,
    }


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_args(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _database_url()
    ensure_sqlite_parent(url)
    connectable = create_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, **_configure_args())
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
