"""Databases for tests: SQLite files, or PostgreSQL databases when the runner provides a server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

PG_URL = os.environ.get("KEYGATE_TEST_DATABASE_URL")
"""Set by scripts/test.sh for the PostgreSQL run of the suite."""


async def create_postgres_database(url: str, name: str) -> str:
    """A new, empty database `name` on the server of `url` (dropped first if it exists)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def fresh_database(directory: Path, name: str) -> str:
    """An empty database of its own: a SQLite file in `directory`, or a PostgreSQL database."""
    if PG_URL:
        return asyncio.run(create_postgres_database(PG_URL, name))
    return f"sqlite+aiosqlite:///{directory / 'keygate.db'}"
