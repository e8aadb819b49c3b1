"""app_configs.device_authorization_url: the operator's device-flow endpoint override

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_configs") as batch_op:
        batch_op.add_column(sa.Column("device_authorization_url", sa.String(2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app_configs") as batch_op:
        batch_op.drop_column("device_authorization_url")
