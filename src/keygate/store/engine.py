"""Creating the async engine and bringing the schema up to date with Alembic."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from keygate.errors import ConfigurationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; busy_timeout makes writers queue, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a SQLite or PostgreSQL URL."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if url.startswith("sqlite://") and "+aiosqlite" not in url:
            raise ConfigurationError("use a sqlite+aiosqlite:/// URL for SQLite")
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    elif url.startswith("postgresql"):
        if "+asyncpg" not in url:
            raise ConfigurationError("use a postgresql+asyncpg:// URL for PostgreSQL")
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    else:
        raise ConfigurationError(
            "KEYGATE_DATABASE_URL must be sqlite+aiosqlite:///… or postgresql+asyncpg://…"
        )
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(connection: SyncConnection) -> Any:
    from alembic.config import Config  # imported on use: the CLI's other commands skip it

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: SyncConnection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def _sqlite_file(engine: AsyncEngine) -> Path | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)


@asynccontextmanager
async def _sqlite_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Serialise migrations of one SQLite file across processes (PostgreSQL locks in-database)."""
    path = _sqlite_file(engine)
    if path is None:
        yield
        return
    handle = (path.parent / f"{path.name}.migrate.lock").open("a")
    try:
        # flock blocks, so wait for it in a thread instead of stalling the event loop.
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing the file releases the lock


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration (idempotent; safe to call at each start, from any process)."""
    try:
        async with _sqlite_migration_lock(engine), engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Several replicas may start at once: one migrates, the others wait.
                await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7411031)")
            await conn.run_sync(_upgrade)
    except (SQLAlchemyError, OSError) as exc:
        raise ConfigurationError(f"could not migrate the database: {exc}") from exc
