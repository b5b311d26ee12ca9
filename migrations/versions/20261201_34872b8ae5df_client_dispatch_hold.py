"""client dispatch hold

Revision ID: 34872b8ae5df
Revises: 50e4977d7c52
Create Date: 2026-12-01 23:44:35.087941

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel column types)
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "34872b8ae5df"
down_revision: str | Sequence[str] | None = "50e4977d7c52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing clients have no hold: the column is filled while added, then the server
    # default is dropped (the application sets the value).
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dispatch_hold", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("dispatch_hold_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("dispatch_hold_case_id", sa.String(length=128), nullable=True)
        )
        batch_op.add_column(
            sa.Column("dispatch_hold_since", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.alter_column("dispatch_hold", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("dispatch_hold_since")
        batch_op.drop_column("dispatch_hold_case_id")
        batch_op.drop_column("dispatch_hold_reason")
        batch_op.drop_column("dispatch_hold")
