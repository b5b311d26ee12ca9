"""The Alembic revisions build exactly the schema that `schemas.tables` declares, on SQLite
and on PostgreSQL, and can be rolled back."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
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


def test_drivers_revision_keeps_existing_depots_and_drivers(database_url: str) -> None:
    """Rows written before the drivers revision get its NOT NULL columns filled, and the
    downgrade drops the cases the older schema cannot hold (no client)."""
    config = alembic_config(database_url)
    command.upgrade(config, "86f12c56ac38")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO depots (id, name, address, timezone, dispatcher_name, "
                    "dispatcher_email) VALUES ('ldn-1', 'London', '1 Way', 'UTC', 'Dana', "
                    "'d@example.com')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO drivers (id, name, email, depot_id, status) "
                    "VALUES ('drv-1', 'Dee', 'dee@example.com', 'ldn-1', 'active')"
                )
            )

        command.upgrade(config, "head")
        with engine.connect() as conn:
            depot = conn.execute(text("SELECT policy_overrides FROM depots")).one()
            driver = conn.execute(text("SELECT updated_at, vehicle_type FROM drivers")).one()
        assert depot.policy_overrides in ({}, "{}")
        assert driver.updated_at is not None and driver.vehicle_type is None

        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO cases (id, type, status, business_key, depot_id, subject, "
                    "opened_at, escalated, details, version, updated_at) VALUES "
                    "('driver-onboarding-drv-1', 'driver_onboarding', 'open', 'drv-1', "
                    "'ldn-1', 'Onboarding', CURRENT_TIMESTAMP, false, '{}', 1, "
                    "CURRENT_TIMESTAMP)"
                )
            )
        command.downgrade(config, "86f12c56ac38")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM drivers")).scalar_one() == 1
    finally:
        engine.dispose()
