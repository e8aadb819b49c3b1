"""ui_sign_outs: dashboard sessions signed out before their cookie expires

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

import keygate.store.schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sign_outs",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("expires_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_ui_sign_outs")),
    )
    op.create_index("ix_ui_sign_outs_expires_at", "ui_sign_outs", ["expires_at"])


def downgrade() -> None:
    op.drop_table("ui_sign_outs")
