"""Migrations: a database made by an older Keygate upgrades in place and keeps its data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import bindparam, text

from keygate.crypto import Cipher, generate_key, parse_key
from keygate.store.apps import AppConfigRepository
from keygate.store.database import Database
from keygate.store.engine import _alembic_config, create_engine, migrate
from keygate.store.schema import UTCDateTime
from tests.support.databases import fresh_database


def test_upgrade_from_the_first_schema_keeps_app_settings(tmp_path: Path) -> None:
    url = fresh_database(tmp_path, "kg_migrations")

    async def scenario() -> tuple[str | None, str | None, list[str]]:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0001"))
            await conn.execute(
                text(
                    "INSERT INTO app_configs (app, client_id, base_url, updated_at) "
                    "VALUES ('constant-contact', 'cid', 'http://127.0.0.1:9', "
                    "'2026-11-22 00:00:00')"
                )
            )
        await migrate(engine)  # 0001 → head
        db = Database(engine, Cipher(parse_key(generate_key(), "test")))
        repo = AppConfigRepository(db)
        await repo.update(
            "constant-contact", {"device_authorization_url": "http://127.0.0.1:9/device"}
        )
        stored = (await repo.all())["constant-contact"]
        async with engine.connect() as conn:
            versions = [row[0] for row in await conn.execute(text("SELECT * FROM alembic_version"))]
        await engine.dispose()
        return stored.client_id, stored.device_authorization_url, versions

    client_id, device_url, versions = asyncio.run(scenario())
    assert client_id == "cid"
    assert device_url == "http://127.0.0.1:9/device"
    assert versions == ["0009"]


def test_concurrent_starts_migrate_once(tmp_path: Path) -> None:
    """Several processes starting on one fresh database (replicas, workers) all come up."""
    import subprocess
    import sys

    url = fresh_database(tmp_path, "kg_concurrent_migrations")
    code = (
        "import asyncio, sys\n"
        "from keygate.store.engine import create_engine, migrate\n"
        "async def main():\n"
        "    engine = create_engine(sys.argv[1])\n"
        "    await migrate(engine)\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    # communicate() reads stderr to the end and closes the pipe.
    outcomes = [(p, p.communicate(timeout=120)[1]) for p in starts]
    failures = [err.decode() for p, err in outcomes if p.returncode != 0]
    assert failures == []

    async def version() -> list[str]:
        engine = create_engine(url)
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            found = [row[0] for row in rows]
        await engine.dispose()
        return found

    assert asyncio.run(version()) == ["0009"]


def test_the_request_log_is_carried_into_chunks_and_back(tmp_path: Path) -> None:
    """0008 keeps every request 0007 logged, in order, and its downgrade gives them back."""
    from keygate.store.request_logs import RequestLogFilter, RequestLogRepository

    url = fresh_database(tmp_path, "kg_log_migration")
    insert = text(
        "INSERT INTO request_logs (workspace_id, at, app, method, path, query_names, status, "
        "latency_ms, connection_id, key_prefix, request_id, source) VALUES (:ws, :at, :app, "
        "'GET', :path, '[\"page\"]', :status, 1.25, :conn, 'kg_abc', :rid, :source)"
    ).bindparams(bindparam("at", type_=UTCDateTime()))
    # 1,100 rows: more than two carried-over chunks of 512 for "w1", interleaved with "w2".
    rows = [
        {
            "ws": "w2" if i % 100 == 99 else "w1",
            "at": datetime(2026, 12, 1, 10, tzinfo=UTC) + timedelta(seconds=i),
            "app": "klaviyo" if i % 2 else "constant-contact",
            "path": f"/p/{i}",
            "status": 500 if i % 7 == 0 else 200,
            "conn": None if i % 5 == 0 else "c1",
            "rid": f"r{i}",
            "source": "keygate" if i % 7 == 0 else "upstream",
        }
        for i in range(1100)
    ]

    async def scenario() -> tuple[list[str], list[str], list[tuple[str, str, int]]]:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0007"))
            await conn.execute(insert, rows)
        await migrate(engine)
        repository = RequestLogRepository(Database(engine, Cipher(parse_key(generate_key(), "t"))))
        w1, _ = await repository.list("w1", RequestLogFilter(), 2000)
        w2, _ = await repository.list("w2", RequestLogFilter(), 2000)
        errors, _ = await repository.list("w1", RequestLogFilter(status_class=5), 2000)
        assert all(r.source == "keygate" and r.latency_ms == 1.25 for r in errors)
        assert w1[0].query_names == ["page"]
        assert w1[0].at.isoformat().startswith("2026-12-01T10")
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0007"))
            back = (
                await conn.execute(
                    text("SELECT request_id, source, status FROM request_logs ORDER BY seq")
                )
            ).all()
        await engine.dispose()
        return [r.request_id for r in w1], [r.request_id for r in w2], [tuple(b) for b in back]

    w1, w2, back = asyncio.run(scenario())
    assert w1 == [r["rid"] for r in rows if r["ws"] == "w1"]
    assert w2 == [r["rid"] for r in rows if r["ws"] == "w2"]
    assert [b[0] for b in back] == [r["rid"] for r in rows]
    assert back[7] == ("r7", "keygate", 500)
