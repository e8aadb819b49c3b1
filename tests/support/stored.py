"""Everything a Keygate database holds, as bytes, so tests can grep it for secrets."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from keygate.crypto import Cipher, DecryptionError

CIPHERTEXT = re.compile(rb"kg1\.[0-9a-f]{12}\.[A-Za-z0-9_-]+")


async def _postgres_rows(url: str) -> bytes:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
            chunks = []
            for table in list(tables):
                # Table names come from pg_tables, not from input.
                query = f'SELECT row_to_json(t)::text FROM "{table}" t'  # noqa: S608
                rows = await conn.execute(text(query))
                chunks.extend(row.encode() for row in rows.scalars())
    finally:
        await engine.dispose()
    return b"\n".join(chunks)


def stored_bytes(database_url: str) -> bytes:
    """The raw bytes of a SQLite database (main file and WAL), or every PostgreSQL row as JSON."""
    if database_url.startswith("postgresql"):
        return asyncio.run(_postgres_rows(database_url))
    path = Path(database_url.split("///", 1)[1])
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def decryptable(stored: bytes, cipher: Cipher, bound_to: str) -> list[bytes]:
    """The plaintexts of every ciphertext in `stored` that `cipher` opens for `bound_to`."""
    found = []
    for match in CIPHERTEXT.finditer(stored):
        # A SQLite record runs straight into the next column's bytes, so the match may be too
        # long: try it shortened down to the smallest possible ciphertext (nonce and tag).
        text, start = match.group().decode(), len("kg1.") + 12 + 1
        for end in range(len(text), start + 37, -1):
            try:
                found.append(cipher.decrypt(text[:end], bound_to=bound_to))
                break
            except (DecryptionError, ValueError):
                continue
    return found
