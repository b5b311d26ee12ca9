"""The Alembic revisions build exactly the schema that `schemas.tables` declares, on SQLite
and on PostgreSQL, and can be rolled back."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

import schemas.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.db import sync_url
from core.migrate import alembic_config, upgrade_database


def _schema_diff(url: str) -> list:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_builds_the_declared_schema(database_url: str) -> None:
    upgrade_database(database_url)

    assert _schema_diff(database_url) == []
    assert set(SQLModel.metadata.tables) <= _tables(database_url)


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)

    assert _schema_diff(database_url) == []


def test_downgrade_base_removes_every_table(database_url: str) -> None:
    upgrade_database(database_url)

    command.downgrade(alembic_config(database_url), "base")

    assert _tables(database_url) <= {"alembic_version"}


def test_revisions_form_a_single_line_of_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))

    assert len(script.get_heads()) == 1, "merge the heads: alembic merge heads -m ..."
