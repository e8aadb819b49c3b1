"""The handle every repository shares: engine, session factory, cipher, and the cache epoch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keygate.crypto import Cipher
from keygate.errors import StoreUnavailable
from keygate.store.outage import StoreOutage, is_unreachable
from keygate.store.schema import CacheEpoch

EPOCH_CHANNEL = "keygate_epoch"
"""The PostgreSQL channel every epoch bump notifies, with the new epoch as its payload."""

# One statement: PostgreSQL delivers the notification when (and only if) the write commits, to
# every listening replica, and it costs the write no extra round trip.
_BUMP_AND_NOTIFY = text(
    "UPDATE cache_epoch SET value = value + 1 WHERE id = 1 "
    "RETURNING value, pg_notify(:channel, value::text)"
).bindparams(channel=EPOCH_CHANNEL)


class Database:
    """An engine plus what every write needs: the cipher and the cache-epoch bump."""

    def __init__(self, engine: AsyncEngine, cipher: Cipher) -> None:
        self.engine = engine
        self.cipher = cipher
        self.outage = StoreOutage()
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._after_write: list[Callable[[int], Awaitable[None]]] = []

    def after_write(self, hook: Callable[[int], Awaitable[None]]) -> None:
        """Call `hook(new_epoch)` after each committed write of this process."""
        self._after_write.append(hook)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def sessions(self) -> AsyncIterator[AsyncSession]:
        """A session; the store's boundary: an unreachable database surfaces as
        StoreUnavailable (and is recorded in `outage`), any other failure as itself."""
        try:
            async with self._sessions() as session:
                yield session
        except StoreUnavailable:
            raise
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            raise self.outage.failed(exc) from exc
        self.outage.succeeded()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that also bumps the cache epoch, so every process drops stale caches
        (on PostgreSQL it also notifies `EPOCH_CHANNEL`, which listening processes hear at once)."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
                if self.dialect == "postgresql":
                    epoch = await session.scalar(_BUMP_AND_NOTIFY)
                else:
                    epoch = await session.scalar(
                        update(CacheEpoch)
                        .where(CacheEpoch.id == 1)
                        .values(value=CacheEpoch.value + 1)
                        .returning(CacheEpoch.value)
                    )
            for hook in self._after_write:
                await hook(int(epoch or 0))

    async def epoch(self) -> int:
        """The current cache epoch."""
        async with self.sessions() as session:
            value = await session.scalar(select(CacheEpoch.value).where(CacheEpoch.id == 1))
        return int(value or 0)

    async def ping(self) -> None:
        """Reach the database once; raises StoreUnavailable if it cannot be reached."""
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Dispose of the engine's pool."""
        await self.engine.dispose()
