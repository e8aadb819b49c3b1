"""Sending a request with an exact request target (clients normalise paths; attacks must not)."""

from __future__ import annotations

import socket
import time

import orjson


def raw_request(
    port: int, target: bytes, headers: dict[str, str], method: bytes = b"GET"
) -> tuple[int, dict[str, str], bytes]:
    """Send `target` as given, byte for byte; returns status, headers and body."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return parse_response(data)


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one raw HTTP/1.1 response."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


def error_code(body: bytes) -> str:
    """The `error.code` of a Keygate error body."""
    return str(orjson.loads(body)["error"]["code"])


def send_raw(port: int, data: bytes) -> socket.socket:
    """A connection that has sent exactly `data` (maybe nothing, or half a request) and is kept
    open: the slow or broken client."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def read_until_closed(
    sock: socket.socket, timeout: float, since: float | None = None
) -> tuple[bytes, float | None]:
    """What the server sends until it closes the connection, and how many seconds after
    `since` (a `time.monotonic()` reading; default now) it closed it — None: still open
    `timeout` seconds after `since`."""
    started = time.monotonic() if since is None else since
    data = b""
    while True:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            return data, None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, None
        except ConnectionResetError:
            return data, time.monotonic() - started
        if not chunk:
            return data, time.monotonic() - started
        data += chunk
