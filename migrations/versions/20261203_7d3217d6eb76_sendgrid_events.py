"""sendgrid events

Revision ID: 7d3217d6eb76
Revises: 41fe63fcfbe7
Create Date: 2026-12-03 18:46:03.006952

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7d3217d6eb76"
down_revision: str | Sequence[str] | None = "41fe63fcfbe7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sendgrid_events",
        sa.Column("sg_event_id", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("message_key", sa.String(length=300), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sg_event_id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_problem", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("delivery_problem_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("delivery_problem_at")
        batch_op.drop_column("delivery_problem")

    op.drop_table("sendgrid_events")
