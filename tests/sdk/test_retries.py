"""The SDK's retries, over real HTTP: connection errors, 429 and 503 honouring Retry-After.

A scripted loopback server stands in for Keygate where the test needs an exact sequence of
answers (several 503s, a Retry-After too long to wait, a dropped connection); the rate limit is
also met at a real Keygate.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from keygate import AsyncKeygate, Keygate
from keygate.sdk import errors
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, upstream_overrides
from tests.support.servers import ServerThread, free_port
from tests.support.upstream import RecordingUpstream

Answer = tuple[int, dict[str, str]]


@dataclass
class ScriptedKeygate:
    """Answers each path from a script (the last answer repeats), and counts what it got."""

    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    hits: dict[str, list[bytes]] = field(default_factory=dict)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        seen = self.hits.setdefault(path, [])
        seen.append(body)
        if path == "/hang/x":
            await asyncio.sleep(2)
        script = self.scripts.get(path, [(200, {})])
        status, headers = script[min(len(seen), len(script)) - 1]
        payload = b'{"ok": true}'
        if "keygate-error" in headers:
            payload = (
                b'{"error": {"code": "%s", "message": "scripted"}}'
                % headers["keygate-error"].encode()
            )
        raw = [(b"content-type", b"application/json")]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[ScriptedKeygate, ServerThread]]:
    """The scripted stand-in, served on loopback."""
    app = ScriptedKeygate()
    server = ServerThread(app, lifespan="off").start()
    yield app, server
    server.stop()


def _client(url: str, **options: Any) -> Keygate:
    return Keygate("kg_test", base_url=url, **options)


LIMITED = {"retry-after": "1", "keygate-error": "rate_limited"}


def test_429_is_retried_after_retry_after(scripted: tuple[ScriptedKeygate, ServerThread]) -> None:
    app, server = scripted
    app.scripts["/a/429"] = [(429, LIMITED), (200, {})]
    with _client(server.url) as kg:
        started = time.monotonic()
        answer = kg.api.post("/a/429", json={"n": 1})
        waited = time.monotonic() - started
    assert answer.status_code == 200
    # The POST was sent twice, the same body each time, a Retry-After apart.
    assert app.hits["/a/429"] == [b'{"n":1}', b'{"n":1}']
    assert waited >= 0.9


def test_retry_after_as_an_http_date(scripted: tuple[ScriptedKeygate, ServerThread]) -> None:
    app, server = scripted
    # Two seconds after now, against the server's Date (second resolution): a wait of 1 to 3 s.
    when = formatdate(time.time() + 2, usegmt=True)
    app.scripts["/a/date"] = [(503, {"retry-after": when}), (200, {})]
    with _client(server.url) as kg:
        started = time.monotonic()
        assert kg.api.get("/a/date").status_code == 200
        waited = time.monotonic() - started
    assert len(app.hits["/a/date"]) == 2
    assert waited >= 0.5


def test_503_is_retried_up_to_max_retries_then_raised(
    scripted: tuple[ScriptedKeygate, ServerThread],
) -> None:
    app, server = scripted
    busy = {"retry-after": "0", "keygate-error": "credentials_unavailable"}
    app.scripts["/a/503-twice"] = [(503, busy), (503, busy), (200, {})]
    app.scripts["/a/503-always"] = [(503, busy)]
    with _client(server.url, max_retries=2) as kg:
        assert kg.api.get("/a/503-twice").status_code == 200
        assert len(app.hits["/a/503-twice"]) == 3
        with pytest.raises(errors.CredentialsUnavailable) as unavailable:
            kg.api.get("/a/503-always")
    assert len(app.hits["/a/503-always"]) == 3  # the first try and two retries
    assert unavailable.value.retry_after == 0
    assert isinstance(unavailable.value, errors.UnavailableError)


def test_an_upstream_503_without_retry_after_is_retried_with_backoff(
    scripted: tuple[ScriptedKeygate, ServerThread],
) -> None:
    app, server = scripted
    app.scripts["/a/upstream-503"] = [(503, {}), (200, {})]
    with _client(server.url) as kg:
        assert kg.api.get("/a/upstream-503").status_code == 200
    assert len(app.hits["/a/upstream-503"]) == 2


def test_a_wait_longer_than_allowed_is_raised_at_once(
    scripted: tuple[ScriptedKeygate, ServerThread],
) -> None:
    app, server = scripted
    app.scripts["/a/long"] = [(429, {"retry-after": "120", "keygate-error": "rate_limited"})]
    with _client(server.url, max_retry_wait=5) as kg:
        started = time.monotonic()
        with pytest.raises(errors.RateLimited) as limited:
            kg.api.get("/a/long")
    assert time.monotonic() - started < 5
    assert limited.value.retry_after == 120
    assert len(app.hits["/a/long"]) == 1


def test_no_retries_when_max_retries_is_zero(
    scripted: tuple[ScriptedKeygate, ServerThread],
) -> None:
    app, server = scripted
    app.scripts["/a/once"] = [(429, LIMITED), (200, {})]
    with _client(server.url, max_retries=0) as kg, pytest.raises(errors.RateLimited):
        kg.api.get("/a/once")
    assert len(app.hits["/a/once"]) == 1


def test_timeout_is_configurable(scripted: tuple[ScriptedKeygate, ServerThread]) -> None:
    _, server = scripted
    with _client(server.url, timeout=0.3, max_retries=0) as kg:
        started = time.monotonic()
        with pytest.raises(errors.KeygateUnreachable, match="ReadTimeout"):
            kg.api.get("/hang/x")
    assert time.monotonic() - started < 4
    # A client brought along (its default, 5 s, outlasts the hang) keeps to the SDK's timeout.
    with (
        httpx.Client() as own,
        _client(server.url, timeout=0.3, max_retries=0, http_client=own) as kg,
    ):
        started = time.monotonic()
        with pytest.raises(errors.KeygateUnreachable, match="ReadTimeout"):
            kg.api.get("/hang/x")
    assert time.monotonic() - started < 4


def test_connection_refused_is_retried_until_keygate_listens() -> None:
    port = free_port()
    app = ScriptedKeygate()
    later = ServerThread(app, port=port, lifespan="off")
    starter = threading.Timer(0.5, later.start)
    starter.start()
    try:
        with _client(f"http://127.0.0.1:{port}", max_retries=8, max_retry_wait=1) as kg:
            assert kg.api.post("/a/x", json={}).status_code == 200  # nothing was sent before
        assert len(app.hits["/a/x"]) == 1
    finally:
        starter.join()
        later.stop()
    with (
        _client(f"http://127.0.0.1:{free_port()}", max_retries=1) as kg,
        pytest.raises(errors.KeygateUnreachable, match="ConnectError"),
    ):
        kg.api.get("/a/x")


class HangUp:
    """A server that reads each request and closes the connection without an answer."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.1)  # accept() wakes up to see `close`
        self._closed = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                if conn.recv(65536):
                    self.requests += 1

    def close(self) -> None:
        """Stop accepting."""
        self._closed.set()
        self._thread.join(5)
        self.sock.close()


def test_a_lost_answer_is_retried_for_idempotent_methods_only() -> None:
    server = HangUp()
    try:
        with _client(server.url, max_retries=2, max_retry_wait=0.2) as kg:
            with pytest.raises(errors.KeygateUnreachable):
                kg.api.get("/a/x")
            assert server.requests == 3
            # A POST may have been acted on: it is not sent again.
            with pytest.raises(errors.KeygateUnreachable):
                kg.api.post("/a/x", json={})
            assert server.requests == 4
    finally:
        server.close()


def test_async_client_retries_too(scripted: tuple[ScriptedKeygate, ServerThread]) -> None:
    app, server = scripted
    app.scripts["/a/async"] = [(429, LIMITED), (503, {"retry-after": "0"}), (200, {})]

    async def run() -> int:
        async with AsyncKeygate("kg_test", base_url=server.url) as kg:
            return (await kg.api.get("/a/async")).status_code

    assert asyncio.run(run()) == 200
    assert len(app.hits["/a/async"]) == 3


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[RecordingUpstream, ServerThread]
) -> Iterator[KeygateHarness]:
    """A real Keygate allowing each key 1 request per second (burst 1)."""
    directory = tmp_path_factory.mktemp("sdk-limited")
    harness = KeygateHarness(
        directory,
        fresh_database(directory, "kg_sdk_limited"),
        apps=upstream_overrides(upstream[1].url),
        rate_limit_per_second=1.0,
        rate_limit_burst=1,
    )
    yield harness
    harness.stop()


def test_keygates_own_rate_limit_is_waited_out(limited: KeygateHarness) -> None:
    tenant = limited.tenant()
    try:
        limited.import_connection(tenant, "klaviyo", {"access_token": "t"})
        with Keygate(tenant.key, base_url=limited.url, max_retries=0) as impatient:
            impatient.api.get("/klaviyo/api/x")
            with pytest.raises(errors.RateLimited) as refused:
                impatient.api.get("/klaviyo/api/x")
        assert refused.value.retry_after is not None
        assert refused.value.retry_after >= 1
        with Keygate(tenant.key, base_url=limited.url) as patient:
            assert [patient.api.get("/klaviyo/api/x").status_code for _ in range(2)] == [200, 200]
    finally:
        tenant.close()
