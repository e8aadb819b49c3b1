"""A recording upstream: answers by path and remembers every request it received."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

VALID_PRIVATE_KEY = "pk_valid_key_123"


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[str, str]]
    body_bytes: int = 0
    body_chunks: int = 0
    body_complete: bool = False
    """The body ended as declared (not cut short by the sender going away)."""

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive)."""
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of a header."""
        return [v for k, v in self.headers if k == name.lower()]


@dataclass
class RecordingUpstream:
    """An ASGI app standing in for a third-party API in gateway tests."""

    seen: list[Seen] = field(default_factory=list)

    def clear(self) -> None:
        """Forget what was seen."""
        self.seen.clear()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        record = Seen(
            method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query=scope.get("query_string", b""),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        )
        self.seen.append(record)
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            record.body_bytes += len(chunk)
            record.body_chunks += 1 if chunk else 0
            if not message.get("more_body"):
                record.body_complete = message["type"] == "http.request"
                break
        path: str = scope["path"]
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            body = orjson.dumps({"errors": [{"status": code, "detail": "from upstream"}]})
            await self._send(
                send,
                code,
                body,
                [
                    (b"x-upstream", b"yes"),
                    (b"retry-after", b"7"),
                    (b"set-cookie", b"a=1"),
                    (b"set-cookie", b"b=2"),
                ],
            )
        elif path.startswith("/download/"):
            await self._download(send, int(path.rsplit("/", 1)[1]))
        elif path == "/api/accounts":
            good = record.header("authorization") == f"Klaviyo-API-Key {VALID_PRIVATE_KEY}"
            body = orjson.dumps({"data": [{"type": "account", "id": "acct"}]} if good else {})
            await self._send(send, 200 if good else 401, body, [])
        elif path == "/redirect":
            await self._send(send, 302, b"", [(b"location", b"https://elsewhere.example/x")])
        elif path == "/hang":
            await asyncio.sleep(60)
        elif path == "/echo-header":
            # The request's X-Echo value, bytes as received, sent back as a response header.
            value = next((v for k, v in scope["headers"] if k == b"x-echo"), b"")
            await self._send(send, 200, b"{}", [(b"x-echo", value), (b"x-plain", b"kept")])
        else:
            echo = {
                "method": record.method,
                "raw_path": record.raw_path.decode("latin-1"),
                "query": record.query.decode("latin-1"),
                "headers": record.headers,
                "body_bytes": record.body_bytes,
                "body_chunks": record.body_chunks,
            }
            await self._send(send, 200, orjson.dumps(echo), [])

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _download(send: Any, size: int) -> None:
        chunk = b"k" * 65536
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(size).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        left = size
        while left > 0:
            piece = chunk[: min(left, len(chunk))]
            left -= len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": left > 0})
