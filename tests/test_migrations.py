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
from core.migrate import alembic_config, include_name, upgrade_database


def _schema_diff(url: str) -> list:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            )
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


def test_delivery_records_revision_keeps_the_cases_failed_attempts(database_url: str) -> None:
    """The failed attempts a case recorded become failed delivery records from a case, with
    their shipment's depot; clients get UTC. The downgrade keeps the case's attempts and
    drops what the older table cannot hold (a routing system's records)."""
    config = alembic_config(database_url)
    command.upgrade(config, "34872b8ae5df")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO clients (id, name, policy_overrides, created_at, dispatch_hold) "
                    "VALUES ('acme', 'Acme', '{}', CURRENT_TIMESTAMP, false)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO depots (id, name, address, timezone, dispatcher_name, "
                    "dispatcher_email, policy_overrides) VALUES ('ldn-1', 'London', '1 Way', "
                    "'UTC', 'Dana', 'd@example.com', '{}')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO shipments (id, client_id, depot_id, status, customer_name, "
                    "customer_email, address, failed_attempts, redelivery_plan, updated_at) "
                    "VALUES ('SHP-1', 'acme', 'ldn-1', 'attempt_failed', 'Ann', "
                    "'ann@example.com', '{}', 1, '{}', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO delivery_attempts (id, shipment_id, case_id, client_id, "
                    "attempt_number, reason, driver_id, attempted_at, fee_cents, currency) "
                    "VALUES ('0b5a4d1c9f0e4c3ab2d1e0f9a8b7c6d5', 'SHP-1', "
                    "'failed-delivery-SHP-1', 'acme', 1, 'not_home', 'drv-7', "
                    "'2026-11-20 09:30:00+00:00', 1700, 'GBP')"
                )
            )

        command.upgrade(config, "head")
        with engine.connect() as conn:
            record = conn.execute(
                text(
                    "SELECT shipment_id, attempt_number, client_id, depot_id, outcome, source, "
                    "zone, residential, case_id, reason, driver_id, case_fee_cents, "
                    "case_fee_currency FROM delivery_records"
                )
            ).one()
            timezone = conn.execute(text("SELECT timezone FROM clients")).scalar_one()
        assert tuple(record) == (
            "SHP-1",
            1,
            "acme",
            "ldn-1",
            "failed",
            "case",
            None,
            None,
            "failed-delivery-SHP-1",
            "not_home",
            "drv-7",
            1700,
            "GBP",
        )
        assert timezone == "UTC"

        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO delivery_records (id, shipment_id, attempt_number, client_id, "
                    "depot_id, attempted_at, outcome, zone, residential, source, created_at, "
                    "updated_at) VALUES ('1c6b5e2dae1f4d4bc3e2f1a0b9c8d7e6', 'SHP-2', 1, "
                    "'acme', 'ldn-1', CURRENT_TIMESTAMP, 'delivered', 'B', true, 'routing', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        command.downgrade(config, "34872b8ae5df")
        with engine.connect() as conn:
            kept = conn.execute(
                text("SELECT shipment_id, case_id, fee_cents, currency FROM delivery_attempts")
            ).all()
        assert [tuple(row) for row in kept] == [("SHP-1", "failed-delivery-SHP-1", 1700, "GBP")]
        assert "delivery_records" not in _tables(database_url)
        assert "rate_agreements" not in _tables(database_url)
    finally:
        engine.dispose()


def _case_indexes(url: str) -> set[str]:
    """The indexes, triggers and tables on `cases`, including the expression and partial
    indexes and search objects autogenerate cannot compare."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                found = conn.execute(
                    text(
                        "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master"
                        " WHERE (tbl_name = 'cases' OR name LIKE 'cases_search%')"
                        " AND name NOT LIKE 'sqlite_autoindex%' AND name != 'cases'"
                    )
                )
            else:
                found = conn.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE tablename = 'cases'")
                )
            return {" ".join(row[0].split()) for row in found}
    finally:
        engine.dispose()


def test_the_revisions_build_the_case_list_indexes_the_tables_declare(database_url: str) -> None:
    """Expression and partial indexes, the trigram index and SQLite's search table and
    triggers: the same, by name and definition, from the revisions and from the metadata."""
    upgrade_database(database_url)
    migrated = _case_indexes(database_url)
    command.downgrade(alembic_config(database_url), "base")
    engine = create_engine(sync_url(database_url))
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    declared = _case_indexes(database_url)

    def normal(entries: set[str]) -> set[str]:
        # SQLite keeps each statement as written: compare up to spacing, quotes, brackets.
        return {" ".join(e.translate(str.maketrans("", "", '"()')).split()) for e in entries}

    assert normal(migrated) == normal(declared)
    assert any("ix_cases_words" in e or "fts5" in e for e in migrated)


def test_a_vacuum_that_renumbers_cases_loses_no_search_after_the_next_migrate(tmp_path) -> None:
    """SQLite may renumber the rowids of `cases` on VACUUM, and the search table finds its
    rows by them: a new case still records (its search row replaces a stale one), and the
    next `upgrade_database` (every `make run` start) rebuilds the search from the cases."""
    url = f"sqlite:///{tmp_path / 'casedesk.db'}"
    upgrade_database(url)
    engine = create_engine(url)
    insert = text(
        "INSERT INTO cases (id, type, status, business_key, subject, opened_at, details,"
        " version, updated_at, escalated) VALUES (:id, 'failed_delivery', 'open', :id,"
        " :subject, '2026-12-01 10:00:00', '{}', 1, '2026-12-01 10:00:00', 0)"
    )
    found = text("SELECT case_id FROM cases_search WHERE words LIKE :words ORDER BY case_id")
    try:
        with engine.begin() as conn:
            for n in range(1, 5):
                conn.execute(insert, {"id": f"case-{n}", "subject": f"Parcel {n} for Quint"})
            conn.execute(text("DELETE FROM cases WHERE id IN ('case-1', 'case-2')"))
            # What a renumbering VACUUM leaves: search rows under other rowids than the cases'.
            conn.execute(text("UPDATE cases_search SET rowid = rowid + 100"))
            conn.execute(insert, {"id": "case-5", "subject": "Parcel 5 for Quint"})
        upgrade_database(url)
        with engine.connect() as conn:
            assert conn.execute(found, {"words": "%quint%"}).scalars().all() == [
                "case-3",
                "case-4",
                "case-5",
            ]
            rowids = "SELECT count(*) FROM cases c JOIN cases_search s ON s.rowid = c.rowid"
            assert conn.execute(text(rowids)).scalar_one() == 3
    finally:
        engine.dispose()
