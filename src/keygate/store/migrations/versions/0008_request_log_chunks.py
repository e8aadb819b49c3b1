"""request_log_chunks: the request log kept as one row per workspace per batch, not per request

Rows already logged are carried over, in order, as chunks of consecutive requests of one
workspace; the downgrade turns chunks back into rows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgpack
import sqlalchemy as sa
from alembic import op

import keygate.store.schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_TYPE = keygate.store.schema.UTCDateTime
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
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


def _chunk(workspace_id: str, entries: list[list[Any]]) -> dict[str, Any]:
    # 0008's chunk: MessagePack of (1, offset 0, entries), zlib level 1; an entry is (start,
    # seconds, method, app, path, status, connection id, request id, query names,
    # (workspace id, key prefix), by Keygate), its end at offset + start + seconds.
    ends = [e[0] + e[1] for e in entries]
    connections = sorted({e[6] for e in entries if e[6]})
    statuses = 0
    for status_class in {e[5] // 100 for e in entries}:
        statuses |= 1 << status_class
    return {
        "workspace_id": workspace_id,
        "first_at": datetime.fromtimestamp(min(ends), UTC),
        "last_at": datetime.fromtimestamp(max(ends), UTC),
        "rows": len(entries),
        "apps": f" {' '.join(sorted({e[3] for e in entries}))} ",
        "connections": f" {' '.join(connections)} " if connections else "",
        "statuses": statuses,
        "data": zlib.compress(msgpack.packb((1, 0.0, entries)), 1),
    }


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


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
        seconds = row.latency_ms / 1000
        run.append(
            [
                row.at.timestamp() - seconds,
                seconds,
                row.method,
                row.app,
                row.path,
                row.status,
                row.connection_id,
                row.request_id,
                list(row.query_names or []),
                [row.workspace_id, row.key_prefix],
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
        _format, offset, entries = msgpack.unpackb(zlib.decompress(data))
        rows = [
            {
                "workspace_id": workspace_id,
                "at": datetime.fromtimestamp(offset + e[0] + e[1], UTC),
                "app": e[3],
                "method": _text(e[2]),
                "path": _text(e[4]),
                "query_names": list(e[8] or []),
                "status": e[5],
                "latency_ms": round(e[1] * 1000, 2),
                "connection_id": e[6] or None,
                "key_prefix": e[9][1],
                "request_id": _text(e[7]),
                "source": "keygate" if e[10] else "upstream",
            }
            for e in entries
            if e is not None
        ]
        if rows:
            connection.execute(sa.insert(rows_table), rows)
    op.drop_table("request_log_chunks")
