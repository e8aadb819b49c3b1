"""The PostgreSQL pool of each process follows KEYGATE_DATABASE_POOL_SIZE / _MAX_OVERFLOW."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from keygate.crypto import generate_key
from keygate.runtime import Runtime
from keygate.settings import Settings
from tests.support.databases import PG_URL, fresh_database


@pytest.mark.skipif(not PG_URL, reason="a connection pool is PostgreSQL's (SQLite has none)")
def test_pool_size_and_overflow_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=fresh_database(tmp_path, "kg_pool_settings"),
        encryption_key=SecretStr(generate_key()),
        database_pool_size=3,
        database_max_overflow=2,
    )

    async def sizes() -> tuple[int, int]:
        runtime = await Runtime.open(settings)
        try:
            pool = runtime.db.engine.pool
            return pool.size(), pool._max_overflow  # type: ignore[attr-defined]
        finally:
            await runtime.close()

    assert asyncio.run(sizes()) == (3, 2)
