"""Shared fixtures: the database under test (SQLite, or PostgreSQL when the runner says so)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.databases import PG_URL, fresh_database
from tests.support.harness import KeygateHarness, Tenant, upstream_overrides
from tests.support.sandboxes import SandboxedKeygate
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream


def pytest_report_header() -> str:
    """Say which database the run uses."""
    return f"keygate store: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite'}"


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def fresh_database_url(directory: Path) -> str:
    """An empty database: a new SQLite file, or the test PostgreSQL database wiped."""
    if PG_URL:
        asyncio.run(_reset_postgres(PG_URL))
        return PG_URL
    return f"sqlite+aiosqlite:///{directory / 'keygate.db'}"


@pytest.fixture(scope="session")
def upstream() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    """The recording upstream, served on loopback."""
    app = RecordingUpstream()
    server = ServerThread(app, lifespan="off").start()
    yield app, server
    server.stop()


@pytest.fixture(scope="session")
def keygate(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: tuple[RecordingUpstream, ServerThread],
) -> Iterator[KeygateHarness]:
    """Keygate over real HTTP, both seed apps pointed at the recording upstream."""
    directory = tmp_path_factory.mktemp("keygate")
    harness = KeygateHarness(
        directory,
        fresh_database_url(directory),
        apps=upstream_overrides(upstream[1].url),
        catalog_dir=Path(__file__).parent / "support" / "catalog",
    )
    yield harness
    harness.stop()


@pytest.fixture(scope="session")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxedKeygate]:
    """Keygate wired to the Klaviyo and Constant Contact sandboxes."""
    directory = tmp_path_factory.mktemp("keygate-sandboxed")
    made = SandboxedKeygate(directory, fresh_database(directory, "keygate_sandboxed"))
    yield made
    made.stop()


@pytest.fixture
def tenant(keygate: KeygateHarness) -> Iterator[Tenant]:
    """A fresh workspace and API key."""
    made = keygate.tenant()
    yield made
    made.close()


@pytest.fixture
def recording(upstream: tuple[RecordingUpstream, ServerThread]) -> RecordingUpstream:
    """The recording upstream, emptied."""
    upstream[0].clear()
    return upstream[0]


@pytest.fixture
def clean_sandboxes(sandboxed: SandboxedKeygate) -> Iterator[SandboxedKeygate]:
    """The sandboxes' data emptied before and after (the session shares them); grants kept."""

    def reset() -> None:
        for sandbox in sandboxed.sandboxes.values():
            sandbox.admin("reset", {"tokens": False})

    reset()
    yield sandboxed
    reset()
