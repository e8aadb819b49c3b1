"""A Keygate served over real HTTP for tests, with helpers to make tenants and connections."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from pyreqwest.middleware import Next
from pyreqwest.request import Request
from pyreqwest.response import Response
from sqlalchemy import event

from keygate.app import KeygateApp, create_app
from keygate.catalog.loader import AppOverrides
from keygate.clock import Clock, system_clock, utc_now
from keygate.crypto import generate_key
from keygate.runtime import Runtime, build_upstream_client
from keygate.settings import Settings
from keygate.store.records import ConnectionRecord
from tests.support.servers import ServerThread, free_port

_names = itertools.count()


@dataclass
class UpstreamRecorder:
    """A client middleware that records the URL of every upstream request Keygate makes."""

    urls: list[str] = field(default_factory=list)

    async def __call__(self, request: Request, next_: Next) -> Response:
        self.urls.append(str(request.url))
        return await next_.run(request)


@dataclass
class Tenant:
    """A workspace with one API key and an HTTP client that sends it."""

    workspace_id: str
    key: str
    http: httpx.Client

    def close(self) -> None:
        """Close the client."""
        self.http.close()


class StatementCounter:
    """Counts SQL statements executed on an engine while enabled."""

    def __init__(self, runtime: Runtime) -> None:
        self.statements: list[str] = []
        self.enabled = False
        event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.enabled:
            self.statements.append(statement)

    def of_requests(self) -> list[str]:
        """The statements, less those that run on their own clock whatever the traffic: the
        request log's batched inserts and the webhook worker's outbox poll. (The runtime's
        epoch poll is the other one: stop it, `runtime.stop_background()`, while counting.)"""
        return [s for s in self.statements if not is_log_batch(s) and "webhook_" not in s]


def is_log_batch(statement: str) -> bool:
    """Whether a statement is one of the request log's batched inserts."""
    return statement.startswith("INSERT INTO request_log_chunks")


class KeygateHarness:
    """Keygate with its real ASGI app, served by uvicorn on loopback.

    `clock` is the time source its token refreshes go by (tests pass one they can advance).
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        port: int | None = None,
        clock: Clock = system_clock,
        **overrides: Any,
    ) -> None:
        self.clock = clock
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.encryption_key = generate_key()
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": database_url,
            "public_url": self.url,
            "encryption_key": SecretStr(self.encryption_key),
            "upstream_connect_timeout": 2.0,
            "upstream_read_timeout": 2.0,
            "cache_poll_interval": 0.2,
            # Access lines go straight to fd 2, past pytest's capture; the serve tests read them.
            "access_log": False,
            # Off unless a test asks: a background pass would make token requests of its own
            # in tests that count the gateway's.
            "proactive_refresh": False,
            # Every test client comes from 127.0.0.1: the per-address limits would make one
            # test's requests refuse another's. Their own tests turn them on.
            "control_rate_limit_per_second": 0,
            "unknown_key_rate_limit_per_second": 0,
        }
        values.update(overrides)
        self.settings = Settings(**values)
        self.recorder = UpstreamRecorder()
        self.app: KeygateApp = create_app(
            self.settings,
            upstream=build_upstream_client(self.settings, self.recorder),
            clock=clock,
        )
        self.server = ServerThread(self.app, self.port).start()
        self.counter = StatementCounter(self.runtime)

    @property
    def runtime(self) -> Runtime:
        """The serving process's runtime."""
        assert self.app.runtime is not None
        return self.app.runtime

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop."""
        return self.server.run(coro)

    @contextmanager
    def counting_statements(self) -> Iterator[StatementCounter]:
        """Count the statements run inside the block, with the runtime's background loop (the
        epoch poll, every 0.2 s here) stopped meanwhile, so what is counted is the block's."""
        self.run(self.runtime.stop_background())
        self.counter.statements.clear()
        self.counter.enabled = True
        try:
            yield self.counter
        finally:
            self.counter.enabled = False
            self.run(self._start_background())

    async def _start_background(self) -> None:
        self.runtime.start_background()  # from inside the serving loop

    def tenant(self) -> Tenant:
        """A fresh workspace and key, isolated from every other test's."""

        async def make() -> tuple[str, str]:
            ws = await self.runtime.keys.ensure_workspace(
                f"ws-{next(_names)}-{uuid.uuid4().hex[:6]}"
            )
            key, _ = await self.runtime.keys.create_key(ws.id, "test")
            return ws.id, key

        workspace_id, key = self.run(make())
        client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        return Tenant(workspace_id, key, client)

    def import_connection(
        self,
        tenant: Tenant,
        app: str,
        values: dict[str, str],
        method: str = "OAUTH2",
        expires_in: int | None = None,
    ) -> ConnectionRecord:
        """An ACTIVE connection holding the given credential values, obtained now (by the
        harness's clock) and expiring `expires_in` seconds later."""

        async def make() -> ConnectionRecord:
            record = await self.runtime.connections.create(tenant.workspace_id, app, method, {})
            now = utc_now(self.clock)
            expires = now + timedelta(seconds=expires_in) if expires_in else None
            active = await self.runtime.connections.activate(record.id, values, expires, now)
            assert active is not None
            return active

        result: ConnectionRecord = self.run(make())
        return result

    def configure(self, app: str, **changes: Any) -> None:
        """Operator settings for an app, as `keygate apps configure` stores them."""

        async def apply() -> None:
            await self.runtime.app_configs.update(app, changes)
            await self.runtime.reload()

        self.run(apply())

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()


INJECTION_APPS = ("header-key", "query-key", "basic-auth")
"""The test catalog's apps (tests/support/catalog) that inject a header, a query parameter and
HTTP Basic."""


def upstream_overrides(url: str) -> dict[str, AppOverrides]:
    """Point both seed apps, and the test catalog's injection apps, at one test upstream."""
    return {
        name: AppOverrides(base_url=url)
        for name in ("klaviyo", "constant-contact", *INJECTION_APPS)
    }
