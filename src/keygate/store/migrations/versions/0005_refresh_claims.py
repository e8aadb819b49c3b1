"""credentials.refresh_claimed_until and the expiry / issue-time indexes of background refresh

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

import keygate.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: unclaimed, so every existing row is looked at by the first scheduler run.
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.add_column(
            sa.Column("refresh_claimed_until", keygate.store.schema.UTCDateTime(), nullable=True)
        )
    op.create_index("ix_credentials_expires_at", "credentials", ["expires_at"])
    # updated_at second: rows stored before issued_at was recorded are aged by their write.
    op.create_index("ix_credentials_issued_at", "credentials", ["issued_at", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_credentials_issued_at", table_name="credentials")
    op.drop_index("ix_credentials_expires_at", table_name="credentials")
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.drop_column("refresh_claimed_until")
