"""Bounded fuzzing of the gateway as served (`keygate serve`, granian): generated methods, paths,
queries and header values, sent over raw sockets.

For every case: no Keygate 5xx; a request Keygate refuses reaches no upstream; a request it
forwards reaches the app's upstream once, with the caller's method, path, query and header value
bytes unchanged; nothing ever reaches a decoy host the paths try to point at. Afterwards no line
Keygate wrote (access and application logs, on its stderr) holds a raw control byte.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.conftest import KEYGATE, Cli
from tests.support.databases import PG_URL, create_postgres_database
from tests.support.processes import stop_process, wait_until_serving
from tests.support.servers import ServerThread, free_port
from tests.support.upstream import RecordingUpstream

TOKEN = "cc-fuzz-token-7c1d"
FORWARDED = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_cases = itertools.count()


@dataclass
class Served:
    """`keygate serve` in front of the recording upstream, a decoy host beside it."""

    port: int
    key: str
    upstream: RecordingUpstream
    upstream_authority: str
    decoy: RecordingUpstream
    decoy_authority: bytes
    stderr_path: Path


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[RecordingUpstream, ServerThread]
) -> Iterator[Served]:
    """A one-worker `keygate serve` whose constant-contact app points at the recording upstream."""
    directory = tmp_path_factory.mktemp("keygate-fuzz")
    url = None
    if PG_URL:
        url = asyncio.run(create_postgres_database(PG_URL, f"keygate_fuzz_{os.getpid()}"))
    cli = Cli(directory / "data", url)
    key = cli.json("init")["key"]
    port = free_port()
    cli.env.update(
        {
            "KEYGATE_APPS__CONSTANT_CONTACT__BASE_URL": upstream[1].url,
            "KEYGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "KEYGATE_API_KEY": key,
            "KEYGATE_UPSTREAM_READ_TIMEOUT": "10",
        }
    )
    cli.json("connections", "import", "constant-contact", "--access-token", TOKEN)
    decoy = ServerThread(RecordingUpstream(), lifespan="off").start()
    stderr_path = directory / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(KEYGATE), "serve", "--port", str(port), "--workers", "1"],
            env=cli.env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, stderr_path.read_text)
        yield Served(
            port,
            key,
            upstream[0],
            upstream[1].url.split("://", 1)[1],
            decoy.server.config.app.app,  # the RecordingUpstream behind the loop capture
            f"127.0.0.1:{decoy.port}".encode(),
            stderr_path,
        )
    finally:
        stop_process(process)
        decoy.stop()


def _exchange(port: int, head: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send a request head as given; the status, headers (lower-case names) and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = top.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


# Pieces of paths and queries: every printable byte, escapes that decode to something dangerous,
# raw bytes no target may hold, dot segments, and ways to name another host.
_PRINTABLE = [bytes([c]) for c in range(0x21, 0x7F) if c != ord("?")]
_ESCAPES = [b"%2e", b"%2E", b"%2f", b"%5c", b"%00", b"%0a", b"%0d", b"%1b", b"%09", b"%7f", b"%25"]
_ESCAPES += [b"%22", b"%27", b"%40", b"%e9", b"%C3%A9", b"%zz", b"%", b"%5B", b"%5D"]
_RAW = [b"\x00", b"\x01", b"\x1b", b"\x7f", b"\xff", b"\xc3\xa9", b" ", b"\t"]
_ATTACKS = [b"..", b".", b"//", b"/../", b"/./", b"@", b"\\", b"http:", b"https://"]
# Plain pieces, weighted up so that about half the cases are forwarded.
_PLAIN = [b"a", b"Z", b"0", b"-", b"_", b"~", b"/v3", b"(", b")", b",", b"="] * 4


def _pieces(extra: list[bytes]) -> st.SearchStrategy[bytes]:
    piece = st.sampled_from(_PRINTABLE + _ESCAPES + _RAW + _ATTACKS + _PLAIN + extra)
    return st.lists(piece, max_size=12).map(b"".join)


_HEADER_BYTES = [bytes([c]) for c in range(0x20, 0x7F)] + [b"\t", b"\xc3\xa9", b"\xff", b"\x80"]
_HEADER_BYTES += [b"\x01", b"\x1b", b"\x7f", b"\x00", b"\xe2\x82\xac"]


@st.composite
def _cases_strategy(draw: st.DrawFn, decoy: bytes) -> tuple[str, bytes, bytes, bytes, bool]:
    method = draw(st.sampled_from([*FORWARDED, *FORWARDED, "TRACE", "CONNECT", "PROPFIND"]))
    path = draw(_pieces([decoy, b"//" + decoy, b"@" + decoy, b"http://" + decoy + b"/"]))
    query = draw(st.one_of(st.none(), _pieces([b"=", b"&", b"'", b'"', b"#", b"[", b"]", decoy])))
    value = draw(st.lists(st.sampled_from(_HEADER_BYTES), max_size=10).map(b"".join))
    with_key = draw(st.booleans().map(lambda b: b or draw(st.booleans())))  # mostly with a key
    target = b"/constant-contact/fz/" + path + (b"" if query is None else b"?" + query)
    return method, target, value, b"" if query is None else query, with_key


def _expected_target(target: bytes) -> tuple[bytes, bytes]:
    """The native path and query the upstream must see for a forwarded request (a fragment is
    the caller's own, never sent)."""
    target = target.split(b"#", 1)[0]
    path, _, query = target.partition(b"?")
    return path[len(b"/constant-contact") :], query


@pytest.mark.timeout(240)
def test_fuzzed_requests_are_forwarded_exactly_or_refused(served: Served) -> None:
    seen_statuses: dict[int, int] = {}

    @settings(
        max_examples=1200,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(_cases_strategy(served.decoy_authority))
    def case(generated: tuple[str, bytes, bytes, bytes, bool]) -> None:
        method, target, value, _, with_key = generated
        number = str(next(_cases)).encode()
        lines = [
            method.encode() + b" " + target + b" HTTP/1.1",
            b"Host: 127.0.0.1",
            b"Connection: close",
            b"X-Fuzz-Case: " + number,
            b"X-Fuzz-Value: " + value,
        ]
        if with_key:
            lines.append(b"Authorization: Bearer " + served.key.encode())
        body = b"{}" if method in ("POST", "PUT", "PATCH") else b""
        if body:
            lines.append(b"Content-Length: 2")
        head = b"\r\n".join(lines) + b"\r\n\r\n" + body
        served.upstream.clear()
        status, headers, body = _exchange(served.port, head)
        seen_statuses[status] = seen_statuses.get(status, 0) + 1
        arrived = [s for s in served.upstream.seen if s.header("x-fuzz-case") == number.decode()]
        assert status < 500, (generated, status, body)
        if b"keygate-error" in headers:
            # Refused by Keygate: JSON, and nothing went upstream.
            assert status in (400, 401, 404, 405), (generated, status, body)
            if method != "HEAD":
                assert orjson.loads(body)["error"]["code"] == headers[b"keygate-error"].decode()
            assert arrived == [], generated
        elif b"x-request-id" in headers:
            # Forwarded: the upstream got the caller's bytes.
            assert status == 200, (generated, status, body)
            assert len(arrived) == 1, generated
            request = arrived[0]
            path, query = _expected_target(target)
            assert request.method == method
            assert request.raw_path == path, generated
            assert request.query == query, generated
            assert request.header("host") == served.upstream_authority
            sent = value.strip(b" \t")  # optional whitespace around a value is not part of it
            assert request.header("x-fuzz-value").encode("latin-1") == sent, generated  # type: ignore[union-attr]
            assert request.header("authorization") == f"Bearer {TOKEN}"
        else:
            # The HTTP server refused it before Keygate saw it.
            assert status == 400, (generated, status, body)
            assert arrived == [], generated

    case()
    assert served.decoy.seen == []
    # The run exercised both sides of the gateway, not only one kind of refusal.
    assert seen_statuses.get(200, 0) > 100, seen_statuses
    assert sum(n for s, n in seen_statuses.items() if s != 200) > 100, seen_statuses
    assert b"Traceback" not in served.stderr_path.read_bytes()


# Sent by the log test itself, so it stands even when run alone.
_LOG_PROBES = [
    b"/constant-contact/x%0a2026-01-01%2000:00:00,000%20INFO%20forged",
    b"/constant-contact/x%0d%1b[31m%00%7f",
    b"/nope%0aforged/x",
    b"/constant-contact/%0a?q=%0a",
]


def test_no_log_line_holds_a_raw_control_byte(served: Served) -> None:
    for target in _LOG_PROBES:
        head = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        head += b"Authorization: Bearer " + served.key.encode() + b"\r\n\r\n"
        assert _exchange(served.port, head)[0] < 500
    time.sleep(1.5)  # the access log writes in batches
    written = served.stderr_path.read_bytes()
    assert written
    control = set(range(0x20)) - {0x0A} | {0x7F}
    bad = [line for line in written.split(b"\n") if control & set(line)]
    assert bad == [], bad[:5]
