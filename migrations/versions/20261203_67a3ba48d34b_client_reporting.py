"""client reporting: clients.reporting, delivery_records.promised_on, client_reports

Revision ID: 67a3ba48d34b
Revises: 7d3217d6eb76
Create Date: 2026-12-03 19:01:44.299432

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "67a3ba48d34b"
down_revision: str | Sequence[str] | None = "7d3217d6eb76"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_reports",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=200), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("charts", sa.JSON(), nullable=False),
        sa.Column("pdf", sa.JSON(), nullable=True),
        sa.Column("csv", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("message_keys", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "kind", "period"),
    )
    with op.batch_alter_table("client_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_client_reports_client_id_kind_created_at",
            ["client_id", "kind", "created_at"],
            unique=False,
        )

    # Existing clients get no reports: the column is filled with {} while added, then the
    # server default is dropped (the application sets the value).
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reporting", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.alter_column("reporting", server_default=None)

    with op.batch_alter_table("delivery_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promised_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_records", schema=None) as batch_op:
        batch_op.drop_column("promised_on")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("reporting")

    with op.batch_alter_table("client_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_client_reports_client_id_kind_created_at")

    op.drop_table("client_reports")
