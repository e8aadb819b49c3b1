"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import keygate.store.schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_configs",
        sa.Column("app", sa.String(length=63), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("client_secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("base_url", sa.String(length=2048), nullable=True),
        sa.Column("authorize_url", sa.String(length=2048), nullable=True),
        sa.Column("token_url", sa.String(length=2048), nullable=True),
        sa.Column("revoke_url", sa.String(length=2048), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("updated_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("app", name=op.f("pk_app_configs")),
    )
    op.create_table(
        "cache_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_epoch")),
    )
    op.execute("INSERT INTO cache_epoch (id, value) VALUES (1, 0)")
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workspaces_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", keygate.store.schema.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", keygate.store.schema.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_api_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "connections",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("app", sa.String(length=63), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_connections_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_connections")),
        sa.UniqueConstraint("id", name=op.f("uq_connections_id")),
    )
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_connections_workspace_app_status", ["workspace_id", "app", "status"], unique=False
        )

    op.create_table(
        "connect_sessions",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=True),
        sa.Column("verifier_ciphertext", sa.Text(), nullable=True),
        sa.Column("created_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.Column("expires_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.Column("completed_at", keygate.store.schema.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connect_sessions_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_connect_sessions")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_connect_sessions_state_hash")),
    )
    with op.batch_alter_table("connect_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connect_sessions_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "credentials",
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("expires_at", keygate.store.schema.UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("refresh_failures", sa.Integer(), nullable=False),
        sa.Column("retry_after", keygate.store.schema.UTCDateTime(), nullable=True),
        sa.Column("updated_at", keygate.store.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_credentials_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_credentials")),
    )


def downgrade() -> None:
    op.drop_table("credentials")
    with op.batch_alter_table("connect_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connect_sessions_connection_id"))

    op.drop_table("connect_sessions")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index("ix_connections_workspace_app_status")

    op.drop_table("connections")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_workspace_id"))

    op.drop_table("api_keys")
    op.drop_table("workspaces")
    op.drop_table("cache_epoch")
    op.drop_table("app_configs")
