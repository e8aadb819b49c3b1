"""Invariants the proxy's speed depends on (issue 4), checked with real servers, untimed.

- One upstream connection pool per process: the runtime hands every request the same client,
  built once, and sequential requests reuse one keep-alive connection to the upstream.
- No full-body buffering: the first bytes of an upload reach the upstream while the caller is
  still holding back the rest of its body.

(No database query per steady-state request: tests/gateway/test_hot_path.py.)
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from keygate.catalog.loader import AppOverrides
from keygate.crypto import generate_key
from keygate.runtime import Runtime
from keygate.settings import Settings
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, Tenant
from tests.support.servers import ServerThread

KB = 1024


class ObservingUpstream:
    """An upstream that notes which client port each request came from and when bodies start."""

    def __init__(self) -> None:
        self.client_ports: list[int] = []
        self.first_chunk = threading.Event()
        self.received = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.client_ports.append(scope["client"][1])
        total = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            if chunk and not self.first_chunk.is_set():
                self.first_chunk.set()
            total += len(chunk)
            if not message.get("more_body"):
                break
        self.received = total
        body = str(total).encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[KeygateHarness, ObservingUpstream]]:
    """Keygate (on the run's database kind) in front of an observing upstream."""
    upstream = ObservingUpstream()
    server = ServerThread(upstream, lifespan="off").start()
    directory = tmp_path_factory.mktemp("keygate-invariants")
    url = fresh_database(directory, "keygate_invariants")
    harness = KeygateHarness(
        directory,
        url,
        apps={"klaviyo": AppOverrides(base_url=server.url)},
        catalog_dir=Path(__file__).parent.parent / "support" / "catalog",
        upstream_read_timeout=30.0,
    )
    yield harness, upstream
    harness.stop()
    server.stop()


@pytest.fixture
def caller(observed: tuple[KeygateHarness, ObservingUpstream]) -> Iterator[Tenant]:
    """A tenant with an ACTIVE Klaviyo connection."""
    harness, _ = observed
    tenant = harness.tenant()
    harness.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    yield tenant
    tenant.close()


def test_every_request_uses_the_one_pooled_client(
    observed: tuple[KeygateHarness, ObservingUpstream], caller: Tenant
) -> None:
    harness, upstream = observed
    client = harness.runtime.upstream
    upstream.client_ports.clear()
    for _ in range(20):
        assert caller.http.get("/klaviyo/api/profiles").status_code == 200
    assert harness.runtime.upstream is client
    # Twenty sequential requests, one keep-alive connection: the pool is shared, not per request.
    assert len(upstream.client_ports) == 20
    assert len(set(upstream.client_ports)) == 1


async def test_the_runtime_builds_its_upstream_client_once(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keygate.db'}",
        encryption_key=SecretStr(generate_key()),
    )
    runtime = await Runtime.open(settings)
    try:
        first = runtime.upstream
        assert all(runtime.upstream is first for _ in range(100))
    finally:
        await runtime.close()


def _send_head(port: int, key: str, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST /klaviyo/api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def test_upload_reaches_the_upstream_before_the_caller_finishes_sending(
    observed: tuple[KeygateHarness, ObservingUpstream], caller: Tenant
) -> None:
    harness, upstream = observed
    upstream.first_chunk.clear()
    first, rest = 256 * KB, 768 * KB
    sock = _send_head(harness.port, caller.key, first + rest)
    try:
        sock.sendall(b"a" * first)
        # The caller holds back 768 KB. A proxy that buffered whole bodies would send nothing yet.
        assert upstream.first_chunk.wait(15), "no byte reached the upstream before the body ended"
        sock.sendall(b"b" * rest)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    finally:
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert body == str(first + rest).encode()
