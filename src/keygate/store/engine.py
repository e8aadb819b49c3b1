"""Creating the async engine and bringing the schema up to date with Alembic."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import os
import struct
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


def create_private_file(path: Path) -> None:
    """Create `path` (and any missing parent, mode 0700) with mode 0600 unless it exists.

    The SQLite file holds encrypted credentials, hashed API keys and connection metadata: like
    the key file, it is for Keygate's user alone. SQLite gives its `-wal` and `-shm` files the
    database file's mode, so creating the database file first, privately, covers them too.
    """
    for directory in reversed([path.parent, *path.parent.parents]):
        if not directory.exists():
            directory.mkdir(mode=0o700, exist_ok=True)  # Path.mkdir(parents=…) ignores mode
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def create_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """An async engine for a SQLite or PostgreSQL URL (PostgreSQL: a pool of `pool_size`
    connections kept, up to `max_overflow` more under load)."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if url.startswith("sqlite://") and "+aiosqlite" not in url:
            raise ConfigurationError("use a sqlite+aiosqlite:/// URL for SQLite")
        path = url.split(":///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            try:
                create_private_file(Path(path))
            except OSError as exc:
                raise ConfigurationError(f"cannot create the SQLite file {path}: {exc}") from exc
    elif url.startswith("postgresql"):
        if "+asyncpg" not in url:
            raise ConfigurationError("use a postgresql+asyncpg:// URL for PostgreSQL")
        # asyncpg waits 60 s for an unanswered connect by default: in a network cut every
        # request that needs the database would hang that long before its 503.
        kwargs.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            connect_args={"timeout": 10},
        )
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
    fd = os.open(path.parent / f"{path.name}.migrate.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    handle = os.fdopen(fd, "a")
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


# A Linux `struct flock` for open-file-description locks: type, whence, start, length, pid (0).
_FLOCK = struct.Struct("@hhqqi4x")
_OFD_LOCKS = hasattr(fcntl, "F_OFD_SETLKW")


@asynccontextmanager
async def host_lock(engine: AsyncEngine, key: str) -> AsyncIterator[bool]:
    """Exclusive, among this host's processes, for `key`, while the block runs; yields whether
    a lock was taken — only for a SQLite file store on Linux.

    SQLite has one write lock for the whole database, and a waiting writer polls for it with
    growing sleeps (up to 100 ms). Holding it across a slow call elsewhere (a token request)
    would stall every other write in every process, and make waiters see its release late. So
    a SQLite store locks one byte of `<database>.locks` per key instead: an open-file-description
    lock (`F_OFD_SETLKW`) that wakes the next waiter at once, excludes tasks of the same process
    too, and is released when its descriptor closes — including when the process dies. The byte
    is chosen by a 56-bit hash of `key`, so two keys share one only by a negligible chance, and
    then merely wait for each other. Other stores (PostgreSQL locks rows across replicas),
    platforms and file systems without such locks yield False: the caller locks in the database.
    """
    path = _sqlite_file(engine)
    if path is None or not _OFD_LOCKS:
        yield False
        return
    offset = int.from_bytes(hashlib.sha256(key.encode()).digest()[:7], "big")
    fd = os.open(path.parent / f"{path.name}.locks", os.O_RDWR | os.O_CREAT, 0o600)
    lock = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    failed = 0
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock)  # free: taken at once, no thread needed
    except OSError as exc:
        failed = exc.errno or -1
    if failed not in (0, errno.EAGAIN, errno.EACCES):
        # A file system without these locks: every process falls back alike.
        os.close(fd)
        yield False
        return
    if failed:
        # Held elsewhere: wait in a thread. If this task is cancelled meanwhile, the thread
        # still finishes, so the descriptor (and the lock it may then hold) is closed when it does.
        waiting = asyncio.ensure_future(
            asyncio.to_thread(fcntl.fcntl, fd, fcntl.F_OFD_SETLKW, lock)
        )
        try:
            await asyncio.shield(waiting)
        except BaseException:
            waiting.add_done_callback(lambda _: os.close(fd))
            raise
    try:
        yield True
    finally:
        os.close(fd)
