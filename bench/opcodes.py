"""The Python work of one steady-state gateway request, counted instead of timed.

On this shared 2-core machine throughput moves by 2x between runs of the same server, which
hides a change of 1 %. The bytecode instructions Keygate's own code executes per request do not
move: this drives the ASGI app in-process (one request at a time, against an upstream on the
same event loop) and counts, per request, the opcodes run in Keygate's frames, those of them
in `Gateway.__call__`, and the Keygate frames entered (calls, and coroutines resuming).

Run: `python -m bench.opcodes [--requests 3000]`. To set a change against an older revision,
run it on both in turn: `git archive REV src | tar -x -C /tmp/old` and
`PYTHONPATH=/tmp/old/src python -m bench.opcodes`. The counts depend on the Python version and
vary by a few opcodes between runs (the request log's batching follows the clock).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr

from keygate.app import create_app
from keygate.crypto import generate_key
from keygate.settings import Settings

_BODY = b'{"data":[{"type":"profile","id":"p1"}]}'
_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(_BODY),
    _BODY,
)
_WARM_UP = 200


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive upstream answering every (bodiless) request with one small JSON body."""
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(_RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


class _Counter:
    """A `sys.settrace` tracer counting opcodes in Keygate's frames only."""

    def __init__(self) -> None:
        self.opcodes = 0
        self.in_call = 0
        self.frames = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if "/keygate/" not in code.co_filename:
            return None
        self.frames += 1
        frame.f_trace_opcodes = True
        if code.co_name == "__call__" and code.co_filename.endswith("gateway/proxy.py"):
            return self._in_call
        return self._anywhere

    def _anywhere(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.opcodes += 1
        return self._anywhere

    def _in_call(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.opcodes += 1
            self.in_call += 1
        return self._in_call


async def count(requests: int, data_dir: Path) -> _Counter:
    """Serve `requests` steady-state requests (after a warm-up) under the counter."""
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'keygate.db'}",
        "encryption_key": SecretStr(generate_key()),
        "apps": {"klaviyo": {"base_url": f"http://127.0.0.1:{port}"}},
        "access_log": True,
    }
    app = create_app(Settings(**values))  # type: ignore[arg-type]
    await app.startup()
    runtime = app.runtime
    assert runtime is not None
    workspace = await runtime.keys.ensure_workspace("bench")
    key, _ = await runtime.keys.create_key(workspace.id, "bench")
    made = await runtime.connections.create(workspace.id, "klaviyo", "OAUTH2", {})
    await runtime.connections.activate(made.id, {"access_token": "bench-token"}, None)
    path = b"/klaviyo/api/profiles"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"page%5Bsize%5D=20",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"accept", b"application/json"),
            (b"revision", b"2024-10-15"),
        ],
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    counter = _Counter()
    try:
        for _ in range(_WARM_UP):
            await app.dispatch(dict(scope), receive, send)
        statuses.clear()
        gc.disable()
        sys.settrace(counter)
        try:
            for _ in range(requests):
                await app.dispatch(dict(scope), receive, send)
        finally:
            sys.settrace(None)
            gc.enable()
        assert statuses == [200] * requests, f"not every request was a 200: {set(statuses)}"
    finally:
        await app.shutdown()
        server.close()
    return counter


def main() -> None:
    """Print the per-request counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    requests = parser.parse_args().requests
    with tempfile.TemporaryDirectory(prefix="keygate-opcodes-") as directory:
        counted = asyncio.run(count(requests, Path(directory)))
    print(
        f"per request: {counted.opcodes / requests:.1f} opcodes in Keygate's code, "
        f"{counted.in_call / requests:.1f} of them in Gateway.__call__; "
        f"{counted.frames / requests:.2f} Keygate frames entered"
    )


if __name__ == "__main__":
    main()
