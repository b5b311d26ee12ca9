"""case list indexes: keyset orders, open and escalated partial indexes, trigram text search

Revision ID: c4f1d2a9e7b3
Revises: 67a3ba48d34b
Create Date: 2026-12-08 00:20:00

`GET /cases` reads each sort from an index in order (a keyset cursor continues it), the
overdue and escalated filters from partial indexes, and `q` from a trigram index: pg_trgm on
PostgreSQL, an FTS5 trigram table kept by triggers on SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c4f1d2a9e7b3"
down_revision: str | Sequence[str] | None = "67a3ba48d34b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status NOT IN ('closed', 'cancelled')"
WORDS = "(id || ' ' || business_key || ' ' || subject)"
NEW_WORDS = "(new.id || ' ' || new.business_key || ' ' || new.subject)"
ROW = (
    "INSERT OR REPLACE INTO cases_search (rowid, words, case_id) "  # noqa: S608
    f"VALUES (new.rowid, {NEW_WORDS}, new.id)"
)
GONE = "DELETE FROM cases_search WHERE rowid = old.rowid"


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_opened_at")
        batch.drop_index("ix_cases_escalated")
    op.create_index("ix_cases_opened_at_id", "cases", ["opened_at", "id"])
    op.create_index("ix_cases_updated_at_id", "cases", ["updated_at", "id"])
    op.create_index(
        "ix_cases_deadline_nulls_last",
        "cases",
        [sa.text("(deadline_at IS NULL)"), "deadline_at", "id"],
    )
    op.create_index(
        "ix_cases_deadline_desc",
        "cases",
        [sa.text("(deadline_at IS NOT NULL)"), "deadline_at", "id"],
    )
    op.create_index("ix_cases_depot_id_assignee", "cases", ["depot_id", "assignee"])
    op.create_index(
        "ix_cases_open_deadline",
        "cases",
        ["deadline_at"],
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_cases_escalated_only",
        "cases",
        ["deadline_at"],
        sqlite_where=sa.text("escalated"),
        postgresql_where=sa.text("escalated"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX ix_cases_words ON cases USING gin ({WORDS} gin_trgm_ops)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE cases_search "
            "USING fts5(words, case_id UNINDEXED, tokenize='trigram')"
        )
        op.execute(
            "INSERT INTO cases_search (rowid, words, case_id) "  # noqa: S608
            f"SELECT rowid, {WORDS}, id FROM cases"
        )
        op.execute(f"CREATE TRIGGER cases_search_insert AFTER INSERT ON cases BEGIN {ROW}; END")
        op.execute(
            "CREATE TRIGGER cases_search_update AFTER UPDATE OF id, business_key, subject ON "
            "cases WHEN old.id IS NOT new.id OR old.business_key IS NOT new.business_key "
            f"OR old.subject IS NOT new.subject BEGIN {GONE}; {ROW}; END"
        )
        op.execute(f"CREATE TRIGGER cases_search_delete AFTER DELETE ON cases BEGIN {GONE}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_cases_words")
    else:
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER cases_search_{trigger}")
        op.execute("DROP TABLE cases_search")
    for name in (
        "ix_cases_escalated_only",
        "ix_cases_open_deadline",
        "ix_cases_depot_id_assignee",
        "ix_cases_deadline_desc",
        "ix_cases_deadline_nulls_last",
        "ix_cases_updated_at_id",
        "ix_cases_opened_at_id",
    ):
        op.drop_index(name, table_name="cases")
    op.create_index("ix_cases_escalated", "cases", ["escalated"])
    op.create_index("ix_cases_opened_at", "cases", ["opened_at"])
