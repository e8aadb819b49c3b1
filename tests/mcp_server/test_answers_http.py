"""How `call_api` shows an answer: useful headers, JSON, text, binary refused, long bodies cut."""

from __future__ import annotations

import json
import logging

import pytest

from keygate.mcp_server.keygate_api import Exchange
from keygate.mcp_server.results import read_body
from tests.mcp_server.conftest import error_text, http_session, structured
from tests.support.harness import KeygateHarness
from tests.support.upstream import RecordingUpstream

Recording = tuple[KeygateHarness, RecordingUpstream]


def _call(path: str, **extra: object) -> dict[str, object]:
    return {"app": "klaviyo", "method": "GET", "path": path, **extra}


async def test_answers_are_shaped_for_an_agent(
    mcp_recording: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keygate, upstream = mcp_recording
    tenant = keygate.tenant()
    connection = keygate.import_connection(tenant, "klaviyo", {"access_token": "upstream-tok"})
    async with http_session(keygate.url, tenant.key) as session:
        echoed = structured(
            await session.call_tool(
                "call_api",
                _call(
                    "/api/echo?a=1",
                    query={"filter": 'equals(email,"a@b.c")', "tag": ["x", "y"], "on": True},
                    headers={"X-Custom": "yes"},
                ),
            )
        )
        posted = structured(
            await session.call_tool(
                "call_api",
                {"app": "klaviyo", "method": "POST", "path": "/api/echo", "body": "plain words"},
            )
        )
        limited = structured(await session.call_tool("call_api", _call("/status/429")))
        binary = structured(await session.call_tool("call_api", _call("/download/600")))
        big_binary = structured(await session.call_tool("call_api", _call("/download/5000")))
        long = structured(await session.call_tool("call_api", _call("/api/echo?" + "q=1&" * 400)))
        moved = structured(await session.call_tool("call_api", _call("/redirect")))
        refusals = [
            await session.call_tool("call_api", _call("/api/x", headers={name: "v"}))
            for name in ("Authorization", "Maton-Connection", "Keygate-Connection", "Host")
        ]
        bad_paths = [
            await session.call_tool("call_api", _call(path))
            for path in ("api/x", "/api/../connections", "/api/%2e%2e/x", "/a b", "/a#b")
        ]
        bad_method = await session.call_tool("call_api", _call("/x") | {"method": "TRACE"})
    seen = upstream.seen[0]
    assert seen.raw_path == b"/api/echo"
    assert seen.query == b"a=1&filter=equals%28email%2C%22a%40b.c%22%29&tag=x&tag=y&on=true"
    assert seen.header("x-custom") == "yes"
    assert seen.header("authorization") == "Bearer upstream-tok"
    assert echoed["status"] == 200
    assert echoed["body"]["method"] == "GET"
    assert echoed["connection_id"] == connection.id
    assert set(echoed["headers"]) == {
        "content-type",
        "content-length",
        "x-request-id",
        "keygate-connection",
    }
    assert posted["body"]["body_bytes"] == len("plain words")
    assert upstream.seen[1].header("content-type") == "text/plain; charset=utf-8"
    assert limited["status"] == 429
    assert limited["headers"]["retry-after"] == "7"
    assert limited["error"] is None  # the app's own 429, not Keygate's
    assert binary["body"] is None
    assert "binary (application/octet-stream, 600 bytes)" in (binary["note"])
    assert big_binary["body"] is None
    assert "binary" in big_binary["note"]
    assert long["truncated"] is True
    assert isinstance(long["body"], str)
    assert len(long["body"].encode()) == 1024
    assert "longer than 1024 bytes" in long["note"]
    assert moved["status"] == 302
    assert moved["headers"]["location"] == "https://elsewhere.example/x"
    for refused in refusals:
        assert "is Keygate's to set" in error_text(refused)
    for refused in bad_paths:
        assert "path" in error_text(refused)
    assert "method" in error_text(bad_method)
    # Neither the Keygate key nor the upstream token shows up in a log line.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/klaviyo/api/echo" in logged  # the capture sees the tools' own requests
    assert tenant.key not in logged
    assert "upstream-tok" not in logged
    everything = json.dumps([echoed, posted, limited, long, moved])
    assert tenant.key not in everything
    tenant.close()


def _exchange(content_type: str, body: bytes, truncated: bool = False) -> Exchange:
    import httpx

    headers = httpx.Headers({"content-type": content_type} if content_type else {})
    return Exchange(200, headers, body, None if truncated else len(body))


@pytest.mark.parametrize(
    ("content_type", "raw", "body", "says"),
    [
        ("application/json", b'{"a": 1}', {"a": 1}, None),
        ("application/vnd.api+json; charset=utf-8", b"[1]", [1], None),
        ("text/csv; charset=latin-1", "é,1".encode("latin-1"), "é,1", None),
        ("", b'{"a": 1}', {"a": 1}, None),
        ("", b"plain", "plain", None),
        ("", b"\xff\xfe\x00", None, "binary"),
        ("image/png", b"\x89PNG", None, "binary (image/png, 4 bytes)"),
        ("application/atom+xml", b"<feed/>", "<feed/>", None),
        ("application/json", b"{oops", "{oops", "not valid JSON"),
    ],
)
def test_bodies_read_as_json_text_or_refused(
    content_type: str, raw: bytes, body: object, says: str | None
) -> None:
    shown, note = read_body(_exchange(content_type, raw), 1024)
    assert shown == body
    assert (note is None) if says is None else (note is not None and says in note)
