"""delivery records and rate agreements

`delivery_attempts` (the failed attempts the failed-delivery cases recorded) becomes
`delivery_records`: every stop outcome, delivered or failed, from the routing system or a
case, one row per (shipment, attempt). Existing attempts are kept as failed records from a
case, with the depot of their shipment; the reference to `shipments` goes (routing records
are for shipments casedesk has no case for). Adds the rate agreements and the client's time
zone (existing clients: UTC).

Downgrade keeps only what the old table can hold: the failed attempts a case recorded, for
shipments in `shipments`; routing records and rate agreements are dropped.

Revision ID: 9f9ad4461713
Revises: 34872b8ae5df
Create Date: 2026-12-03 17:39:17.959710

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9f9ad4461713"
down_revision: str | Sequence[str] | None = "34872b8ae5df"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(*values: str, name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    # Existing clients get UTC while the column is added; then the application sets it.
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC")
        )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.alter_column("timezone", server_default=None)

    op.create_table(
        "delivery_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shipment_id", sa.String(length=64), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("depot_id", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", _enum("delivered", "failed", name="stopoutcome"), nullable=False),
        sa.Column("zone", sa.String(length=32), nullable=True),
        sa.Column("residential", sa.Boolean(), nullable=True),
        sa.Column("source", _enum("routing", "case", name="recordsource"), nullable=False),
        sa.Column("case_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("driver_id", sa.String(length=64), nullable=True),
        sa.Column("case_fee_cents", sa.Integer(), nullable=True),
        sa.Column("case_fee_currency", sa.String(length=3), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.ForeignKeyConstraint(["depot_id"], ["depots.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id", "attempt_number"),
    )
    with op.batch_alter_table("delivery_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_records_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_delivery_records_client_id_attempted_at",
            ["client_id", "attempted_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_records_depot_id"), ["depot_id"], unique=False
        )

    # Every attempt a case recorded was a failed one; its shipment row names the depot.
    op.execute(
        """
        INSERT INTO delivery_records (
            id, shipment_id, attempt_number, client_id, depot_id, attempted_at, outcome,
            zone, residential, source, case_id, reason, driver_id, case_fee_cents,
            case_fee_currency, created_at, updated_at
        )
        SELECT a.id, a.shipment_id, a.attempt_number, a.client_id, s.depot_id, a.attempted_at,
            'failed', NULL, NULL, 'case', a.case_id, a.reason, a.driver_id, a.fee_cents,
            a.currency, a.attempted_at, a.attempted_at
        FROM delivery_attempts a JOIN shipments s ON s.id = a.shipment_id
        """
    )

    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_case_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_client_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_shipment_id"))
    op.drop_table("delivery_attempts")

    op.create_table(
        "rate_agreements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("base_rate_per_stop", sa.String(length=40), nullable=False),
        sa.Column("zone_rates", sa.JSON(), nullable=False),
        sa.Column("residential_surcharge", sa.String(length=40), nullable=False),
        sa.Column("failed_attempt_fee", sa.String(length=40), nullable=False),
        sa.Column("minimum_charge_per_invoice", sa.String(length=40), nullable=False),
        sa.Column("tax_rate", sa.String(length=40), nullable=False),
        sa.Column("billing_cycle", _enum("weekly", "monthly", name="billingcycle"), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "effective_from"),
    )
    with op.batch_alter_table("rate_agreements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_agreements_client_id"), ["client_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_agreements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_agreements_client_id"))
    op.drop_table("rate_agreements")

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shipment_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("driver_id", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fee_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id", "attempt_number"),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_attempts_shipment_id"), ["shipment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_attempts_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_delivery_attempts_case_id"), ["case_id"], unique=False)

    op.execute(
        """
        INSERT INTO delivery_attempts (
            id, shipment_id, case_id, client_id, attempt_number, reason, driver_id,
            attempted_at, fee_cents, currency
        )
        SELECT r.id, r.shipment_id, r.case_id, r.client_id, r.attempt_number, r.reason,
            r.driver_id, r.attempted_at, r.case_fee_cents, r.case_fee_currency
        FROM delivery_records r
        WHERE r.outcome = 'failed' AND r.case_id IS NOT NULL AND r.reason IS NOT NULL
            AND r.driver_id IS NOT NULL AND r.case_fee_cents IS NOT NULL
            AND r.case_fee_currency IS NOT NULL
            AND EXISTS (SELECT 1 FROM shipments s WHERE s.id = r.shipment_id)
        """
    )

    with op.batch_alter_table("delivery_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_records_depot_id"))
        batch_op.drop_index("ix_delivery_records_client_id_attempted_at")
        batch_op.drop_index(batch_op.f("ix_delivery_records_case_id"))
    op.drop_table("delivery_records")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("timezone")
