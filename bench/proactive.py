"""Proactive refresh: what keeping tokens fresh without traffic costs, against what a fleet needs.

One `keygate serve` worker, pinned to the server core, runs the background scheduler with its
default batch and concurrency; the Klaviyo sandbox (`keygate sandbox`) on the load core is the
token endpoint, on loopback. `count` connections are stored holding sandbox-minted token sets
that are not due; the worker's idle CPU is sampled; then every token is aged into its refresh
margin at once (one UPDATE of the expiry times, as fifty-five minutes passing would) and the
worker's CPU time and the wall time until the sandbox has answered `count` refresh grants are
measured. The CPU per refresh is the scheduler's whole cost: the claim statements, decrypting,
the token request, encrypting and storing the new set, releasing the claim.

A fleet keeping 100,000 connections with one-hour tokens fresh refreshes 100000 / 3600 ≈ 28
of them a second; the report sets that against one worker's measured rate and its CPU.

Run alone: `python -m bench.proactive [--count N] [--database-url postgresql+asyncpg://…]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from bench.cpu import tree_cpu_seconds
from bench.deploy import KEYGATE, make_deployment, serve
from bench.procs import LOAD_CORE, Supervisor, free_port, free_port_pair, pinned, wait_for_port
from bench.storm import SandboxAdmin
from keygate.crypto import Cipher, load_master_key
from keygate.settings import Settings
from keygate.store.engine import create_engine
from keygate.store.records import Status
from keygate.store.schema import Connection, Credential, Workspace, utcnow

FLEET_CONNECTIONS = 100_000
TOKEN_LIFETIME_S = 3600
NEEDED_PER_S = FLEET_CONNECTIONS / TOKEN_LIFETIME_S
"""Refreshes a second that keep 100k connections with one-hour tokens fresh."""

INTERVAL_S = 0.5
"""The scheduler's pass interval here: short, so the aged tokens are found at once."""


@dataclass
class SchedulerCost:
    """One measurement of the background refresh."""

    connections: int
    refreshed: int
    wall_s: float
    """From the aging to the last refresh (the first pass starts up to an interval later)."""
    first_to_last_s: float
    refreshed_after_first: int
    """Refreshes seen after the first one was: the rate is taken over these."""
    cpu_s: float
    idle_cpu_per_s: float
    batch: int
    concurrency: int
    database: str

    @property
    def cpu_ms_per_refresh(self) -> float:
        """Worker CPU milliseconds per background refresh (idle CPU taken out)."""
        return 1000 * self.cpu_s / self.refreshed if self.refreshed else 0.0

    @property
    def observed_per_s(self) -> float:
        """Refreshes a second the worker made against the sandbox, once the pass had begun."""
        if self.first_to_last_s > 0 and self.refreshed_after_first:
            return self.refreshed_after_first / self.first_to_last_s
        return self.refreshed / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_bound_per_s(self) -> float:
        """Refreshes a second one core could make at this CPU cost, if nothing else waited."""
        return self.refreshed / self.cpu_s if self.cpu_s else 0.0

    @property
    def needed_core_share(self) -> float:
        """The share of one core the fleet's 28 refreshes a second take, at this cost."""
        return NEEDED_PER_S * self.cpu_s / self.refreshed if self.refreshed else 0.0

    @property
    def headroom(self) -> float:
        """One worker's observed rate ÷ the rate the fleet needs."""
        return self.observed_per_s / NEEDED_PER_S

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, the derived numbers included."""
        return asdict(self) | {
            "cpu_ms_per_refresh": round(self.cpu_ms_per_refresh, 3),
            "observed_per_s": round(self.observed_per_s, 1),
            "cpu_bound_per_s": round(self.cpu_bound_per_s, 1),
            "needed_per_s": round(NEEDED_PER_S, 2),
            "needed_core_share": round(self.needed_core_share, 4),
            "headroom": round(self.headroom, 2),
        }


def summary_lines(cost: dict[str, Any]) -> list[str]:
    """The measurement as the report prints it."""
    return [
        f"Proactive refresh ({cost['database']}, batch {cost['batch']}, concurrency "
        f"{cost['concurrency']}): {cost['refreshed']} of {cost['connections']} connections "
        f"refreshed in {cost['wall_s']:.2f} s, {cost['observed_per_s']:.0f}/s by one worker; "
        f"{cost['cpu_ms_per_refresh']:.2f} ms CPU per refresh "
        f"(one core: {cost['cpu_bound_per_s']:.0f}/s).",
        f"100k connections with 1 h tokens need {cost['needed_per_s']:.1f} refreshes/s: "
        f"one worker's measured rate is {cost['headroom']:.1f} times that, "
        f"{100 * cost['needed_core_share']:.1f} % of one core at this cost.",
    ]


async def _store_connections(settings: Settings, minted: list[dict[str, Any]]) -> None:
    """Active Klaviyo connections holding the minted token sets, an hour from expiry."""
    cipher = Cipher(load_master_key(settings))
    engine = create_engine(settings.resolved_database_url)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            workspace = await conn.scalar(select(Workspace.id).where(Workspace.name == "default"))
            assert workspace is not None, "run `keygate init` first"
            conn_rows: list[dict[str, Any]] = []
            cred_rows: list[dict[str, Any]] = []
            for tokens in minted:
                connection_id = str(uuid.uuid4())
                values = {"access_token": tokens["access_token"]}
                values["refresh_token"] = tokens["refresh_token"]
                conn_rows.append(
                    {
                        "id": connection_id,
                        "workspace_id": workspace,
                        "app": "klaviyo",
                        "method": "OAUTH2",
                        "status": Status.ACTIVE.value,
                        "metadata_": {},
                        "scopes": None,
                        "error_code": None,
                        "error_message": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                cred_rows.append(
                    {
                        "connection_id": connection_id,
                        "ciphertext": cipher.encrypt(orjson.dumps(values), bound_to=connection_id),
                        "key_id": cipher.primary_key_id,
                        "expires_at": now + timedelta(seconds=TOKEN_LIFETIME_S),
                        "issued_at": now,
                        "version": 1,
                        "refresh_failures": 0,
                        "retry_after": None,
                        "updated_at": now,
                    }
                )
            await conn.execute(insert(Connection), conn_rows)
            await conn.execute(insert(Credential), cred_rows)
    finally:
        await engine.dispose()


async def _age_every_token(settings: Settings) -> None:
    """Move every token to 60 s before expiry, with its hour-long lifetime: due at once."""
    engine = create_engine(settings.resolved_database_url)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(Credential).values(
                    expires_at=now + timedelta(seconds=60),
                    issued_at=now - timedelta(seconds=TOKEN_LIFETIME_S - 60),
                )
            )
    finally:
        await engine.dispose()


def measure(
    sup: Supervisor,
    run_dir: Path,
    count: int,
    timeout: float = 300,
    database_url: str | None = None,
) -> SchedulerCost:
    """Start the sandbox and one worker, store `count` connections, age them, and measure
    (on SQLite in the run directory, or on the empty database `database_url`)."""
    port = free_port_pair()  # the sandboxes: Klaviyo on port, Constant Contact on port + 1
    sandbox = sup.start(
        "proactive-sandbox", pinned(LOAD_CORE, [KEYGATE, "sandbox", "--empty", "--port", str(port)])
    )
    wait_for_port(port, 60, sandbox.alive)
    admin = SandboxAdmin(f"http://127.0.0.1:{port}")
    try:
        admin.post("config", {"rate_limit": False})
        app_env = {
            "KEYGATE_APPS__KLAVIYO__CLIENT_ID": "sandbox-client",
            "KEYGATE_APPS__KLAVIYO__CLIENT_SECRET": "sandbox-secret",
            "KEYGATE_APPS__KLAVIYO__TOKEN_URL": f"{admin.url}/oauth/token",
            "KEYGATE_APPS__KLAVIYO__AUTHORIZE_URL": f"{admin.url}/oauth/authorize",
            "KEYGATE_PROACTIVE_REFRESH": "true",
            "KEYGATE_PROACTIVE_REFRESH_INTERVAL": str(INTERVAL_S),
            "KEYGATE_ACCESS_LOG": "false",
        }
        deployment = make_deployment(run_dir / "keygate-proactive", app_env, database_url)
        settings = Settings(data_dir=deployment.data_dir, database_url=database_url)
        minted = [admin.mint() for _ in range(count)]
        asyncio.run(_store_connections(settings, minted))
        serving = serve(sup, deployment, "keygate-proactive", free_port(), 1)
        defaults = Settings()
        try:
            processes = serving.processes()
            time.sleep(1.0)  # start-up work done
            idle_started, idle_cpu = time.monotonic(), tree_cpu_seconds(processes)
            time.sleep(2.0)
            idle_per_s = (tree_cpu_seconds(processes) - idle_cpu) / (
                time.monotonic() - idle_started
            )
            before = admin.token_requests()
            cpu_before, started = tree_cpu_seconds(processes), time.monotonic()
            asyncio.run(_age_every_token(settings))
            first_seen, at_first = 0.0, before
            deadline = started + timeout
            done = before
            while done - before < count and time.monotonic() < deadline:
                time.sleep(0.02)
                done = admin.token_requests()
                if not first_seen and done > before:
                    first_seen, at_first = time.monotonic(), done
            finished = time.monotonic()
            cpu = tree_cpu_seconds(processes) - cpu_before - idle_per_s * (finished - started)
        finally:
            sup.stop(serving.process)
    finally:
        admin.close()
        sup.stop(sandbox)
    # The rate from the first refresh seen on: the pass that finds them starts up to one
    # interval after the aging, which is the schedule's wait, not the refresh's cost.
    return SchedulerCost(
        connections=count,
        refreshed=done - before,
        wall_s=finished - started,
        first_to_last_s=finished - first_seen if first_seen else 0.0,
        refreshed_after_first=done - at_first,
        cpu_s=max(0.0, cpu),
        idle_cpu_per_s=idle_per_s,
        batch=defaults.proactive_refresh_batch,
        concurrency=defaults.proactive_refresh_concurrency,
        database="PostgreSQL" if database_url else "SQLite",
    )


def main() -> int:
    """Measure once and print the numbers and their JSON."""
    parser = argparse.ArgumentParser(description="Keygate's background refresh: its cost.")
    parser.add_argument("--count", type=int, default=1000, help="connections refreshed")
    parser.add_argument(
        "--database-url", help="an empty postgresql+asyncpg:// database (default: SQLite)"
    )
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="keygate-bench-proactive-"))
    with Supervisor(run_dir) as sup:
        cost = measure(sup, run_dir, args.count, database_url=args.database_url).as_dict()
    print("\n".join(summary_lines(cost)))
    print(json.dumps(cost, indent=2))
    return 0 if cost["refreshed"] == cost["connections"] else 1


if __name__ == "__main__":
    sys.exit(main())
