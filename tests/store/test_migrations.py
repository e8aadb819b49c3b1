"""Migrations: a database made by an older Keygate upgrades in place and keeps its data."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import text

from keygate.crypto import Cipher, generate_key, parse_key
from keygate.store.apps import AppConfigRepository
from keygate.store.database import Database
from keygate.store.engine import _alembic_config, create_engine, migrate
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
    assert versions == ["0004_record"]


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

    assert asyncio.run(version()) == ["0004_record"]
