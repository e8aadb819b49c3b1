"""The host lock a SQLite store takes per connection while refreshing: across processes, at
once on release, released by a process's death, not leaked by a waiter that gave up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from keygate.store.engine import create_engine, host_lock

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from keygate.store.engine import create_engine, host_lock

    async def main():
        engine = create_engine(sys.argv[1])
        async with host_lock(engine, sys.argv[2]) as locked:
            print("held" if locked else "not locked", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        print("released", flush=True)
        await engine.dispose()

    asyncio.run(main())
    """
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'keygate.db'}"


@pytest.fixture
def holder(url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock for connection `c1` until a line arrives on its stdin."""
    # As a context manager the pipes are closed, and the child reaped, on the way out.
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, "c1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        yield child
        child.kill()


async def _try(url: str, key: str, seconds: float) -> bool:
    """Whether this process gets the lock on `key` within `seconds` (released at once)."""
    engine = create_engine(url)

    async def take() -> None:
        async with host_lock(engine, key) as locked:
            assert locked

    try:
        await asyncio.wait_for(take(), seconds)
        return True
    except TimeoutError:
        return False
    finally:
        await engine.dispose()


def test_another_process_waits_until_release_and_other_keys_do_not(
    url: str, holder: subprocess.Popen[str]
) -> None:
    assert holder.stdin is not None
    assert holder.stdout is not None
    stdin, stdout = holder.stdin, holder.stdout

    async def run() -> tuple[bool, bool, str, bool]:
        first = await _try(url, "c1", 0.5)
        other = await _try(url, "c2", 5)
        stdin.write("release\n")
        stdin.flush()
        said = await asyncio.to_thread(stdout.readline)
        # The first waiter gave up (cancelled while its thread still waited): once that thread
        # got the lock it let it go, so the lock is free now.
        again = await _try(url, "c1", 5)
        return first, other, said.strip(), again

    assert asyncio.run(run()) == (False, True, "released", True)


def test_a_killed_holder_releases_the_lock(url: str, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    assert asyncio.run(_try(url, "c1", 5))


def test_tasks_of_one_process_exclude_each_other(url: str) -> None:
    async def run() -> list[str]:
        engine = create_engine(url)
        order: list[str] = []

        async def hold(name: str) -> None:
            async with host_lock(engine, "c1"):
                order.append(f"{name} in")
                await asyncio.sleep(0.2)
                order.append(f"{name} out")

        await asyncio.gather(hold("a"), hold("b"))
        await engine.dispose()
        return order

    order = asyncio.run(run())
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


def test_postgresql_and_memory_stores_lock_in_the_database() -> None:
    async def locked(url: str) -> bool:
        engine = create_engine(url)
        async with host_lock(engine, "c1") as taken:
            pass
        await engine.dispose()
        return taken

    assert asyncio.run(locked("sqlite+aiosqlite:///:memory:")) is False
    assert asyncio.run(locked("postgresql+asyncpg://u:p@127.0.0.1:1/none")) is False
