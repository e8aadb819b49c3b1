"""A running Keygate over HTTP, for the client commands (`call`, `connect`).

The standard library's `http.client`: it imports in a fraction of httpx's time, which counts
on every run of the CLI. One connection is kept open and reused (pages of `call --all`, the
polls of `connect`).
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from keygate.cli.client_config import ClientConfig, ClientConfigError, client_config
from keygate.cli.output import fail

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class Unreachable(Exception):
    """Keygate could not be reached (refused, reset, timed out, bad TLS)."""


@dataclass
class Reply:
    """One HTTP answer, read whole."""

    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not JSON)."""
        return json.loads(self.body)

    def error(self) -> tuple[str, str] | None:
        """Keygate's own error as (code, message), when the answer is one (`Keygate-Error`)."""
        code = self.header("keygate-error")
        if code is None:
            return None
        try:
            message = self.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = self.body.decode(errors="replace")[:200]
        return code, str(message)


class Remote:
    """Requests to one Keygate base URL with the caller's API key."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 120.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._auth = f"Bearer {api_key}"
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._netloc, timeout=self._timeout)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        """Send `method path` (path and query, from Keygate's root) and read the whole answer."""
        sent = {"Authorization": self._auth, **(headers or {})}
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connection or self._connect()
            self._connection = connection
            try:
                connection.request(method, self._prefix + path, body=body, headers=sent)
                response = connection.getresponse()
                content = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the server closed meanwhile: once more, on a new one.
                if attempt == 1 and reused and method in _IDEMPOTENT:
                    continue
                raise Unreachable(type(exc).__name__) from exc
            if response.will_close:
                self.close()
            version = "HTTP/1.0" if response.version == 10 else "HTTP/1.1"
            return Reply(response.status, response.reason, version, response.getheaders(), content)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def get_json(self, path: str) -> tuple[Reply, Any]:
        """GET a control-plane path; the reply and its JSON body (None when not JSON)."""
        reply = self.request("GET", path, {"Accept": "application/json"})
        try:
            return reply, reply.json()
        except ValueError:
            return reply, None

    def close(self) -> None:
        """Close the kept connection, if any."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def open_remote(url: str | None) -> tuple[ClientConfig, Remote]:
    """The client configuration of this run (see `client_config`) and a Remote for it."""
    try:
        config = client_config(os.environ, url)
    except ClientConfigError as exc:
        fail(f"invalid settings: {exc}")
    if not config.api_key:
        fail("set KEYGATE_API_KEY to a Keygate API key (keygate keys create prints one)")
    try:
        return config, Remote(config.url, config.api_key)
    except ValueError as exc:
        fail(f"invalid settings: {config.source}: {exc}")


def fail_unreachable(config: ClientConfig, why: Unreachable) -> NoReturn:
    """Say Keygate could not be reached, and how to point the CLI at it."""
    how = {
        "--url": "check --url",
        "KEYGATE_URL": "check KEYGATE_URL, or pass --url",
    }.get(
        config.source,
        "is 'keygate serve' running? Set KEYGATE_PORT (and KEYGATE_HOST) as for the server, "
        "or KEYGATE_URL, or pass --url",
    )
    fail(f"could not reach Keygate at {config.url} ({why}); {how}")


def fail_refused(reply: Reply, doing: str) -> NoReturn:
    """Say Keygate refused a control-plane request, with its error code and message."""
    found = reply.error()
    if found is None:
        fail(f"{doing}: HTTP {reply.status} {reply.body.decode(errors='replace')[:200]}")
    code, message = found
    if code == "invalid_api_key":
        message += " (check KEYGATE_API_KEY)"
    fail(f"{doing}: {message} ({code})")
