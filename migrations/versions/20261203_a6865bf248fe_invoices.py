"""invoices, their lines and stops, per-client counters

The invoicing run's tables: `invoices` (one per client and period, money in integer minor
units), `invoice_lines` (the summary), `invoice_stops` (every stop billed, unique per
shipment and attempt: a stop is billed once) and `invoice_counters` (each client's last
number, bumped in the transaction that inserts the invoice). New tables only: nothing to
migrate, and the downgrade drops them.

Revision ID: a6865bf248fe
Revises: 9f9ad4461713
Create Date: 2026-12-03 18:23:32.792927

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a6865bf248fe"
down_revision: str | Sequence[str] | None = "9f9ad4461713"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
        ),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("minor_units", sa.Integer(), nullable=False),
        sa.Column("stops_minor", sa.BigInteger(), nullable=False),
        sa.Column("minimum_charge_minor", sa.BigInteger(), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_lines", sa.JSON(), nullable=False),
        sa.Column("stop_count", sa.Integer(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("agreements_used", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=200), nullable=False),
        sa.Column("case_id", sa.String(length=128), nullable=False),
        sa.Column("message_key", sa.String(length=300), nullable=False),
        sa.Column("pdf_document_id", sa.String(length=64), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("pdf_size_bytes", sa.Integer(), nullable=True),
        sa.Column("csv_document_id", sa.String(length=64), nullable=True),
        sa.Column("csv_sha256", sa.String(length=64), nullable=True),
        sa.Column("csv_size_bytes", sa.Integer(), nullable=True),
        sa.Column("documents_stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "period_start", "period_end"),
        sa.UniqueConstraint("client_id", "sequence"),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoices_client_id"), ["client_id"], unique=False)

    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("agreement_effective_from", sa.Date(), nullable=False),
        sa.Column("zone", sa.String(length=32), nullable=True),
        sa.Column("residential", sa.Boolean(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_id", "position"),
    )
    op.create_table(
        "invoice_stops",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("shipment_id", sa.String(length=64), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("delivered", "failed", name="stopoutcome", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("zone", sa.String(length=32), nullable=True),
        sa.Column("residential", sa.Boolean(), nullable=True),
        sa.Column("agreement_effective_from", sa.Date(), nullable=False),
        sa.Column("base_rate_minor", sa.BigInteger(), nullable=False),
        sa.Column("zone_rate_minor", sa.BigInteger(), nullable=False),
        sa.Column("residential_surcharge_minor", sa.BigInteger(), nullable=False),
        sa.Column("failed_attempt_fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id", "attempt_number"),
    )
    with op.batch_alter_table("invoice_stops", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_stops_invoice_id"), ["invoice_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("invoice_stops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_stops_invoice_id"))

    op.drop_table("invoice_stops")
    op.drop_table("invoice_lines")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_client_id"))
        batch_op.drop_index(batch_op.f("ix_invoices_case_id"))

    op.drop_table("invoices")
    op.drop_table("invoice_counters")
