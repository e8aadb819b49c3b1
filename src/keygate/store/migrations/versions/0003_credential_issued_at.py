"""credentials.issued_at: when the access token was obtained (its lifetime sets the margin)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

import keygate.store.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Left NULL on existing rows: their lifetime is unknown, so they keep the configured margin
    # until their next refresh records it.
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.add_column(
            sa.Column("issued_at", keygate.store.schema.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.drop_column("issued_at")
