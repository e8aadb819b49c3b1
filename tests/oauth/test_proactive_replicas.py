"""Proactive refresh across `keygate serve` processes on one store: with no traffic at all, each
due connection is refreshed once, by one process.

On PostgreSQL three replicas share the database; on SQLite one process serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from keygate.runtime import Runtime
from keygate.store.records import Status
from keygate.store.schema import utcnow
from tests.support.databases import PG_URL, fresh_database
from tests.support.processes import Deployment, Process
from tests.support.sandboxes import Sandbox, start_sandbox
from tests.support.servers import free_port

CONNECTIONS = 12
LIFETIME = 1.0
"""Seconds the imported tokens live: with the 1 s margin, due half a second after import."""

SCHEDULER = {
    "KEYGATE_PROACTIVE_REFRESH": "true",
    "KEYGATE_PROACTIVE_REFRESH_INTERVAL": "0.2",
    # Small batches and one request at a time, so the processes take turns at the rows.
    "KEYGATE_PROACTIVE_REFRESH_BATCH": "2",
    "KEYGATE_PROACTIVE_REFRESH_CONCURRENCY": "1",
}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Constant Contact: rotating refresh tokens, so a second refresh of one connection would
    spend an already spent token and fail it — a duplicate cannot go unseen."""
    made = start_sandbox("constant-contact", "http://127.0.0.1:1/oauth/callback")
    made.admin("faults", {"token_endpoint": "slow", "token_delay": 0.05})
    yield made
    made.server.stop()


def import_connections(
    deployment: Deployment, sandbox: Sandbox, expires_in: float, count: int = CONNECTIONS
) -> list[str]:
    """`count` active connections, each with a token set minted by the sandbox."""
    minted = [sandbox.mint_tokens() for _ in range(count)]

    async def make() -> list[str]:
        runtime = await Runtime.open(deployment.settings())
        try:
            ws = await runtime.keys.ensure_workspace("default")
            ids = []
            for tokens in minted:
                conn = await runtime.connections.create(ws.id, deployment.app, "OAUTH2", {})
                values = {k: tokens[k] for k in ("access_token", "refresh_token")}
                expires = utcnow() + timedelta(seconds=expires_in)
                await runtime.connections.activate(conn.id, values, expires)
                ids.append(conn.id)
            return ids
        finally:
            await runtime.close()

    return asyncio.run(make())


def statuses(deployment: Deployment, ids: list[str]) -> list[Status]:
    """The connections' statuses, read from the store."""

    async def read() -> list[Status]:
        runtime = await Runtime.open(deployment.settings(), run_migrations=False)
        try:
            found = [await runtime.connections.get(conn) for conn in ids]
            return [record.status for record in found if record is not None]
        finally:
            await runtime.close()

    return asyncio.run(read())


def refreshes(sandbox: Sandbox) -> int:
    """refresh_token grants the sandbox has answered."""
    return int(sandbox.admin("stats")["token_requests"].get("refresh_token", 0))


def test_each_due_connection_is_refreshed_once_by_one_process(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    replicas = 3 if PG_URL else 1
    first = Deployment(
        tmp_path, fresh_database(tmp_path, "kg_proactive_replicas"), sandbox, "constant-contact"
    )
    others = [dataclasses.replace(first, port=free_port()) for _ in range(1, replicas)]
    deployments = [first, *others]
    processes: list[Process] = []
    try:
        with ThreadPoolExecutor(replicas) as pool:  # started together, as a fleet's are
            starting = [pool.submit(replica.serve, extra_env=SCHEDULER) for replica in deployments]
            for future in starting:
                with contextlib.suppress(Exception):  # the first failure is raised below
                    processes.append(future.result())
            for future in starting:
                future.result()
        # Every process is up and polling: the connections appear, and fall due, at once.
        ids = import_connections(first, sandbox, LIFETIME)
        deadline = time.monotonic() + 60
        while refreshes(sandbox) < CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # a late duplicate would show up here
        counted = refreshes(sandbox)
    finally:
        for process in processes:
            process.stop()
    logs = [process.output() for process in processes]
    found_in = r"refreshed the access token of connection (\S+)"
    by_process = [re.findall(found_in, log) for log in logs]
    refreshed = [conn for found in by_process for conn in found]
    # Each connection was claimed by one process only: the lifecycle's lock alone would also
    # keep the provider at one request each, but every process would take every row.
    claimed = [sum(map(int, re.findall(r"background refresh: claimed (\d+)", log))) for log in logs]
    assert counted == CONNECTIONS, logs
    assert sorted(refreshed) == sorted(ids), by_process  # each once, in one process's log
    assert sum(claimed) == CONNECTIONS, claimed
    assert statuses(first, ids) == [Status.ACTIVE] * CONNECTIONS
    print(f"claimed per process: {claimed}; refreshed: {[len(found) for found in by_process]}")


def test_a_stop_during_a_background_refresh_keeps_the_rotated_token(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """SIGTERM (a rolling restart) while the provider answers a background refresh: the
    process finishes it and stores the rotated refresh token before it exits, so the
    connection still works after the restart."""
    deployment = Deployment(
        tmp_path, fresh_database(tmp_path, "kg_proactive_stop"), sandbox, "constant-contact"
    )
    sandbox.admin("faults", {"token_endpoint": "slow", "token_delay": 1.5})
    server = deployment.serve(extra_env=SCHEDULER)
    try:
        [conn] = import_connections(deployment, sandbox, LIFETIME, count=1)
        deadline = time.monotonic() + 30
        while sandbox.admin("stats")["token_requests_total"] == 0:
            assert time.monotonic() < deadline, "no background refresh started"
            time.sleep(0.02)
    finally:
        server.stop()  # the provider is still answering
    sandbox.admin("faults", {"token_endpoint": "ok"})
    # Had the refresh died with the process, its spent token would still be stored, due: the
    # next process's scheduler would try it, and the provider refuse it.
    restarted = deployment.serve(extra_env=SCHEDULER)
    try:
        time.sleep(2)
    finally:
        restarted.stop()
    assert refreshes(sandbox) == 1, restarted.output()
    assert statuses(deployment, [conn]) == [Status.ACTIVE]
