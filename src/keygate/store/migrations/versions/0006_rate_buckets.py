"""rate_buckets: the fleet-wide per-key rate limit's shared token buckets (PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No foreign key: a lease must not wait on the key's row, and a deleted key's bucket is
    # purged with the idle ones.
    op.create_table(
        "rate_buckets",
        sa.Column("key_id", sa.String(36), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("leases", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_rate_buckets")),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
