"""Keygate's HTTP API as the MCP tools use it: the caller's key on every request, nothing more.

The credential lives only in this object's headers: it is never part of a URL, a tool result or a
log line (httpx logs the method, URL and status of a request, never its headers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson


class KeygateAnswerError(Exception):
    """Keygate's control plane answered with one of its JSON errors (or could not be reached)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class Exchange:
    """A gateway answer: status, headers, and at most `limit` bytes of its body."""

    status: int
    headers: httpx.Headers
    body: bytes
    size: int | None
    """The body's full size when it was read to the end (None: cut short)."""

    @property
    def truncated(self) -> bool:
        """Whether the body was cut at the limit."""
        return self.size is None


def _error_of(response: httpx.Response) -> KeygateAnswerError:
    try:
        error = orjson.loads(response.content)["error"]
        return KeygateAnswerError(response.status_code, str(error["code"]), str(error["message"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = response.text[:200]
        return KeygateAnswerError(response.status_code, "unexpected_answer", text)


class KeygateAPI:
    """One caller's view of a Keygate: its control plane and gateway, with its key."""

    def __init__(self, client: httpx.AsyncClient, authorization: str, public_url: str) -> None:
        """`authorization` is the caller's `Authorization` value, presented on every request."""
        self._client = client
        self._auth = {"Authorization": authorization}
        self.public_url = public_url.rstrip("/")
        """Where people reach this Keygate (the links tools hand out)."""

    async def control(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A control-plane call's JSON answer; raises KeygateAnswerError on a Keygate error."""
        try:
            response = await self._client.request(
                method, path, params=params, json=json, headers=self._auth
            )
        except httpx.HTTPError as exc:
            raise KeygateAnswerError(
                0, "keygate_unreachable", f"Keygate could not be reached ({type(exc).__name__})."
            ) from exc
        if response.status_code >= 400:
            raise _error_of(response)
        answer: dict[str, Any] = response.json()
        return answer

    async def text(self, path: str, *, params: dict[str, str] | None = None) -> str:
        """A text document Keygate serves (a skill); raises KeygateAnswerError on a Keygate
        error or when Keygate cannot be reached."""
        try:
            response = await self._client.get(path, params=params, headers=self._auth)
        except httpx.HTTPError as exc:
            raise KeygateAnswerError(
                0, "keygate_unreachable", f"Keygate could not be reached ({type(exc).__name__})."
            ) from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response.text

    async def gateway(
        self,
        method: str,
        target: str,
        *,
        headers: dict[str, str],
        content: bytes | None,
        limit: int,
    ) -> Exchange:
        """One request through the gateway (`target` is `/{app}/{path}?{query}`), its body
        read up to `limit` bytes; raises KeygateAnswerError when Keygate cannot be reached."""
        sent = {**headers, **self._auth}
        try:
            async with self._client.stream(method, target, headers=sent, content=content) as reply:
                parts: list[bytes] = []
                received = 0
                size: int | None = None
                async for chunk in reply.aiter_bytes():
                    parts.append(chunk)
                    received += len(chunk)
                    if received > limit:
                        break
                else:
                    size = received
                body = b"".join(parts)[:limit]
                return Exchange(reply.status_code, reply.headers, body, size)
        except httpx.HTTPError as exc:
            raise KeygateAnswerError(
                0, "keygate_unreachable", f"Keygate could not be reached ({type(exc).__name__})."
            ) from exc
