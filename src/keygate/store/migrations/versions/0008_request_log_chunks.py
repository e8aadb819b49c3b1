"""request_log_chunks: the request log kept as one row per workspace per batch, not per request

Rows already logged are carried over, in order, as chunks of consecutive requests of one
workspace; the downgrade turns chunks back into rows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

import keygate.store.schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_TYPE = keygate.store.schema.UTCDateTime
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK = 512
"""Requests per carried-over chunk."""

# This migration's own view of both tables (the application's models move on; it must not).
rows_table = sa.table(
    "request_logs",
    sa.column("seq", SEQ),
    sa.column("workspace_id", sa.String()),
    sa.column("at", UTC_TYPE()),
    sa.column("app", sa.String()),
    sa.column("method", sa.String()),
    sa.column("path", sa.Text()),
    sa.column("query_names", sa.JSON()),
    sa.column("status", sa.Integer()),
    sa.column("latency_ms", sa.Float()),
    sa.column("connection_id", sa.String()),
    sa.column("key_prefix", sa.String()),
    sa.column("request_id", sa.String()),
    sa.column("source", sa.String()),
)
chunks_table = sa.table(
    "request_log_chunks",
    sa.column("seq", SEQ),
    sa.column("workspace_id", sa.String()),
    sa.column("first_at", UTC_TYPE()),
    sa.column("last_at", UTC_TYPE()),
    sa.column("rows", sa.Integer()),
    sa.column("apps", sa.Text()),
    sa.column("connections", sa.Text()),
    sa.column("statuses", sa.Integer()),
    sa.column("data", sa.LargeBinary()),
)


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _chunk(workspace_id: str, entries: list[list[Any]]) -> dict[str, Any]:
    # The columns 0008's chunks have: entries [at µs, app, method, path, query names, status,
    # latency µs, connection id, key prefix, request id, by Keygate], as compressed JSON.
    ats = [e[0] for e in entries]
    connections = sorted({e[7] for e in entries if e[7]})
    statuses = 0
    for status_class in {e[5] // 100 for e in entries}:
        statuses |= 1 << status_class
    return {
        "workspace_id": workspace_id,
        "first_at": EPOCH + timedelta(microseconds=min(ats)),
        "last_at": EPOCH + timedelta(microseconds=max(ats)),
        "rows": len(entries),
        "apps": f" {' '.join(sorted({e[1] for e in entries}))} ",
        "connections": f" {' '.join(connections)} " if connections else "",
        "statuses": statuses,
        "data": zlib.compress(json.dumps(entries, separators=(",", ":")).encode(), 1),
    }


def _logged_rows(connection: sa.Connection) -> Iterator[Any]:
    after = 0
    while True:
        page = connection.execute(
            sa.select(rows_table)
            .where(rows_table.c.seq > after)
            .order_by(rows_table.c.seq)
            .limit(5000)
        ).all()
        yield from page
        if len(page) < 5000:
            return
        after = page[-1].seq


def upgrade() -> None:
    op.create_table(
        "request_log_chunks",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("first_at", UTC_TYPE(), nullable=False),
        sa.Column("last_at", UTC_TYPE(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("apps", sa.Text(), nullable=False),
        sa.Column("connections", sa.Text(), nullable=False),
        sa.Column("statuses", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_request_log_chunks")),
    )
    op.create_index(
        "ix_request_log_chunks_workspace_seq", "request_log_chunks", ["workspace_id", "seq"]
    )
    op.create_index("ix_request_log_chunks_first_at", "request_log_chunks", ["first_at"])
    connection = op.get_bind()
    run: list[list[Any]] = []
    workspace = None
    for row in _logged_rows(connection):
        if run and (row.workspace_id != workspace or len(run) == CHUNK):
            connection.execute(sa.insert(chunks_table), [_chunk(str(workspace), run)])
            run = []
        workspace = row.workspace_id
        run.append(
            [
                _micros(row.at),
                row.app,
                row.method,
                row.path,
                list(row.query_names or []),
                row.status,
                round(row.latency_ms * 1000),
                row.connection_id,
                row.key_prefix,
                row.request_id,
                row.source == "keygate",
            ]
        )
    if run:
        connection.execute(sa.insert(chunks_table), [_chunk(str(workspace), run)])
    op.drop_table("request_logs")


def downgrade() -> None:
    op.create_table(
        "request_logs",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("at", UTC_TYPE(), nullable=False),
        sa.Column("app", sa.String(length=63), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("query_names", sa.JSON(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("key_prefix", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_request_logs")),
    )
    op.create_index("ix_request_logs_workspace_seq", "request_logs", ["workspace_id", "seq"])
    op.create_index("ix_request_logs_at", "request_logs", ["at"])
    connection = op.get_bind()
    chunks = connection.execute(
        sa.select(chunks_table.c.workspace_id, chunks_table.c.data).order_by(chunks_table.c.seq)
    ).all()
    for workspace_id, data in chunks:
        rows = [
            {
                "workspace_id": workspace_id,
                "at": EPOCH + timedelta(microseconds=e[0]),
                "app": e[1],
                "method": e[2],
                "path": e[3],
                "query_names": e[4],
                "status": e[5],
                "latency_ms": round(e[6] / 1000, 2),
                "connection_id": e[7],
                "key_prefix": e[8],
                "request_id": e[9],
                "source": "keygate" if e[10] else "upstream",
            }
            for e in json.loads(zlib.decompress(data))
            if e is not None
        ]
        if rows:
            connection.execute(sa.insert(rows_table), rows)
    op.drop_table("request_log_chunks")
