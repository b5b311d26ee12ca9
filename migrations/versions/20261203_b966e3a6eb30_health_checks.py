"""health checks

Revision ID: b966e3a6eb30
Revises: 920a5f078c3e
Create Date: 2026-12-03 17:58:20.751650

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b966e3a6eb30"
down_revision: str | Sequence[str] | None = "920a5f078c3e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("health_checks")
