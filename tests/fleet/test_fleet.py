"""Three replicas on one PostgreSQL database behind nginx (`deploy/nginx/keygate.conf`).

The replicas poll the cache epoch only every 30 s here, so a change seen everywhere within a
second can only have been pushed (PostgreSQL LISTEN/NOTIFY, `keygate.store.notify`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from sqlalchemy import text

from keygate.store.keys import display_prefix
from keygate.store.notify import APPLICATION_NAME
from tests.support.databases import fresh_database
from tests.support.fleet import Fleet
from tests.support.sandboxes import Sandbox, start_sandbox

APP = "constant-contact"
PATH = "/constant-contact/v3/account/summary"
PUSH_TARGET = 0.100
"""Seconds within which every replica must refuse a revoked key or a deleted connection."""
TRIES = 3
BIG = 1 << 40
"""A declared body length over any replica's KEYGATE_MAX_REQUEST_BODY (512 MiB by default)."""
"""Measurements per change: the machine is shared with other test runs (2 cores), so one try
may lose its slot to them; the best of three must meet the target, every one must come in far
below the 30 s poll."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """The Constant Contact sandbox, counting token requests."""
    made = start_sandbox(APP, "http://127.0.0.1:1/oauth/callback")
    yield made
    made.server.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator[Fleet]:
    """Three replicas and nginx, for the whole module."""
    directory = tmp_path_factory.mktemp("fleet")
    made = Fleet(
        directory,
        fresh_database(directory, "kg_fleet"),
        sandbox,
        APP,
        env={"KEYGATE_CACHE_POLL_INTERVAL": "30"},
    )
    made.start()
    yield made
    made.stop()


async def new_key_and_connection(fleet: Fleet, sandbox: Sandbox) -> tuple[str, str]:
    """A fresh API key and ACTIVE connection in the default workspace: (key, connection id)."""
    tokens = sandbox.mint_tokens()
    async with fleet.store() as store:
        workspace = await store.keys.ensure_workspace("default")
        key, _ = await store.keys.create_key(workspace.id)
        connection = await store.connections.create(workspace.id, APP, "OAUTH2", {})
        await store.connections.activate(
            connection.id, {"access_token": tokens["access_token"]}, None
        )
    return key, connection.id


async def probe(port: int, headers: dict[str, str]) -> int:
    """The status a replica answers a gateway GET that declares a body far over its limit: 413
    while the key and connection hold (the route is resolved before the body limit is checked),
    401 or 404 once they do not; the upstream is never contacted, so a probe takes a millisecond
    or two and the measured delay is the replica's, not the upstream's."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"GET {PATH} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {BIG}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def refusal_delays(
    fleet: Fleet,
    headers: dict[str, str],
    change: Callable[[], Awaitable[None]],
    refused: int,
    within: float = 5.0,
) -> list[float]:
    """Seconds from the start of `change()` until each replica (asked directly, not through
    nginx) refuses the key or connection with `refused`; each has served it before."""
    async with httpx.AsyncClient(timeout=10) as client:
        for replica in fleet.replicas:
            warm = await client.get(replica.url + PATH, headers=headers)
            assert warm.status_code == 200, warm.text
            assert await probe(replica.port, headers) == 413
    go = asyncio.Event()
    started = 0.0

    async def watch(port: int) -> float:
        await go.wait()
        while True:
            status = await probe(port, headers)
            if status == refused:
                return time.perf_counter() - started
            assert status == 413, status
            assert time.perf_counter() - started < within, "the change never arrived"
            await asyncio.sleep(0.001)  # leave the replicas the CPU they need

    watchers = [asyncio.create_task(watch(replica.port)) for replica in fleet.replicas]
    started = time.perf_counter()
    go.set()
    await change()
    took = time.perf_counter() - started
    delays = list(await asyncio.gather(*watchers))
    print(f"\n  the change itself took {took * 1000:.1f} ms", end="")
    return delays


def assert_pushed(what: str, tries: list[list[float]]) -> None:
    """Print every try's per-replica delays; the best worst case meets the target."""
    worst = [max(delays) for delays in tries]
    shown = "; ".join(", ".join(f"{d * 1000:.1f}" for d in delays) for delays in tries)
    print(
        f"\n{what}: per-replica delays (ms) per try: {shown}; worst per try (ms): "
        + ", ".join(f"{w * 1000:.1f}" for w in worst)
    )
    assert all(w < 1.0 for w in worst), f"{what}: a replica took {max(worst):.2f} s"
    assert min(worst) <= PUSH_TARGET, f"{what}: worst delays {worst} over {PUSH_TARGET} s"


def test_every_replica_serves_through_nginx(fleet: Fleet, sandbox: Sandbox) -> None:
    key, conn = asyncio.run(new_key_and_connection(fleet, sandbox))
    headers = {"Authorization": f"Bearer {key}", "Keygate-Connection": conn}
    with httpx.Client(timeout=30) as client:
        statuses = [client.get(fleet.url + PATH, headers=headers).status_code for _ in range(9)]
    assert statuses == [200] * 9, fleet.nginx_log()


def revocation_delays(fleet: Fleet, sandbox: Sandbox) -> list[float]:
    """Revoke a key every replica has served (in the test process, as `keygate keys revoke`
    would): each replica's delay until it answers 401."""

    async def run() -> list[float]:
        key, conn = await new_key_and_connection(fleet, sandbox)
        headers = {"Authorization": f"Bearer {key}", "Keygate-Connection": conn}
        async with fleet.store() as store:

            async def revoke() -> None:
                assert await store.keys.revoke_key(display_prefix(key)) is not None

            return await refusal_delays(fleet, headers, revoke, refused=401)

    return asyncio.run(run())


def test_a_revoked_key_is_refused_by_every_replica_at_once(fleet: Fleet, sandbox: Sandbox) -> None:
    assert_pushed("revoked key", [revocation_delays(fleet, sandbox) for _ in range(TRIES)])


def test_a_deleted_connection_is_refused_by_every_replica_at_once(
    fleet: Fleet, sandbox: Sandbox
) -> None:
    async def run() -> list[float]:
        key, conn = await new_key_and_connection(fleet, sandbox)
        headers = {"Authorization": f"Bearer {key}", "Keygate-Connection": conn}
        async with fleet.store() as store:

            async def delete() -> None:
                # The store write `DELETE /connections/{id}` makes, in the test process, so
                # that its moment is known and every replica has to hear of it.
                await store.connections.delete(conn)

            return await refusal_delays(fleet, headers, delete, refused=404)

    assert_pushed("deleted connection", [asyncio.run(run()) for _ in range(TRIES)])


def test_a_lost_listener_reconnects_by_itself(fleet: Fleet, sandbox: Sandbox) -> None:
    """Terminating every replica's listener backend (as a failover would) loses nothing: each
    reconnects, and a revocation is again refused everywhere at once."""

    async def listeners() -> set[int]:
        async with fleet.store() as store, store.db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
            return {int(row[0]) for row in rows}

    async def terminate(pids: set[int]) -> None:
        async with fleet.store() as store, store.db.engine.connect() as conn:
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    before = asyncio.run(listeners())
    assert len(before) == len(fleet.replicas), before
    asyncio.run(terminate(before))
    deadline = time.monotonic() + 15
    while True:
        now = asyncio.run(listeners())
        if len(now) == len(fleet.replicas) and not now & before:
            break
        assert time.monotonic() < deadline, f"listeners {before} → {now}\n{fleet.outputs()}"
        time.sleep(0.1)
    assert_pushed(
        "revoked key after reconnect", [revocation_delays(fleet, sandbox) for _ in range(TRIES)]
    )
