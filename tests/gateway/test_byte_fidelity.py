"""The upstream receives the caller's path, query and header values byte for byte, or a 400."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.test_errors import assert_error
from tests.oauth.test_refresh import cached_route_then_expired
from tests.support.harness import KeygateHarness, Tenant
from tests.support.raw_http import error_code, raw_request
from tests.support.sandboxes import SandboxedKeygate
from tests.support.upstream import RecordingUpstream

PRINTABLE = [bytes([c]) for c in range(0x21, 0x7F)]
# Refused for safety (see gateway/paths.py); '?' starts the query, so it is never in a path.
REFUSED_IN_PATH = {b"\\", b"@", b"#"}
REFUSED_IN_QUERY = {b"#"}


def _get(keygate: KeygateHarness, tenant: Tenant, target: bytes) -> tuple[int, bytes]:
    status, _, body = raw_request(keygate.port, target, {"Authorization": f"Bearer {tenant.key}"})
    return status, body


@pytest.fixture
def klaviyo(keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream) -> Tenant:
    """A tenant with an ACTIVE klaviyo connection; the upstream's record emptied."""
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    recording.clear()
    return tenant


def test_every_printable_byte_in_the_query_arrives_unchanged(
    keygate: KeygateHarness, klaviyo: Tenant, recording: RecordingUpstream
) -> None:
    for byte in PRINTABLE:
        query = b"x=a" + byte + b"b&filter=equals(a,'b')"
        status, body = _get(keygate, klaviyo, b"/klaviyo/api/q?" + query)
        if byte in REFUSED_IN_QUERY:
            assert (status, error_code(body)) == (400, "invalid_path"), byte
            continue
        assert status == 200, (byte, body)
        assert recording.seen[-1].query == query, byte
    everything = b"".join(b for b in PRINTABLE if b not in REFUSED_IN_QUERY)
    assert _get(keygate, klaviyo, b"/klaviyo/api/q?" + everything)[0] == 200
    assert recording.seen[-1].query == everything


def test_every_printable_byte_in_the_path_arrives_unchanged(
    keygate: KeygateHarness, klaviyo: Tenant, recording: RecordingUpstream
) -> None:
    for byte in PRINTABLE:
        if byte == b"?":
            continue
        path = b"/api/a" + byte + b'b/{"id"}'
        status, body = _get(keygate, klaviyo, b"/klaviyo" + path)
        if byte in REFUSED_IN_PATH:
            assert (status, error_code(body)) == (400, "invalid_path"), byte
            continue
        assert status == 200, (byte, body)
        assert recording.seen[-1].raw_path == path, byte
    everything = b"/" + b"".join(b for b in PRINTABLE if b not in {*REFUSED_IN_PATH, b"?"})
    assert _get(keygate, klaviyo, b"/klaviyo" + everything)[0] == 200
    assert recording.seen[-1].raw_path == everything


@pytest.mark.parametrize(
    "value", ["é".encode(), b"\xff", b"caf\xe9", b"\xe2\x82\xac 5", b"a\tb", b"plain"]
)
def test_header_value_bytes_arrive_unchanged(
    keygate: KeygateHarness, klaviyo: Tenant, recording: RecordingUpstream, value: bytes
) -> None:
    response = klaviyo.http.get("/klaviyo/api/h", headers={"x-note": value})
    assert response.status_code == 200, response.text
    # The recording upstream decodes header bytes as latin-1: encoding gives them back.
    assert recording.seen[-1].header("x-note").encode("latin-1") == value  # type: ignore[union-attr]


def test_a_control_byte_in_a_header_value_is_a_400(
    keygate: KeygateHarness, klaviyo: Tenant, recording: RecordingUpstream
) -> None:
    # granian refuses these before Keygate sees them; h11 (uvicorn) lets them through.
    for value in [b"a\x01b", b"\xffa\x01b"]:
        response = klaviyo.http.get("/klaviyo/api/h", headers={"x-note": value})
        body = assert_error(response, 400, "invalid_header")
        assert "x-note" in str(body["message"])
    assert recording.seen == []


def test_exact_bytes_requests_carry_bodies_and_pass_responses_through(
    keygate: KeygateHarness, klaviyo: Tenant, recording: RecordingUpstream
) -> None:
    sized = klaviyo.http.post("/klaviyo/api/p?f='x'", content=b"k" * 1000)
    assert sized.status_code == 200
    assert (recording.seen[-1].query, recording.seen[-1].body_bytes) == (b"f='x'", 1000)

    def chunks() -> object:
        yield b"a" * 70_000
        yield b"b" * 70_000

    chunked = klaviyo.http.post("/klaviyo/api/c?f='x'", content=chunks())  # type: ignore[arg-type]
    assert chunked.status_code == 200
    assert (recording.seen[-1].query, recording.seen[-1].body_bytes) == (b"f='x'", 140_000)
    assert recording.seen[-1].header("authorization") == "Bearer kl"

    upstream_error = klaviyo.http.get("/status/404".join(["/klaviyo", "?f='x'"]))
    assert upstream_error.status_code == 404
    assert "keygate-error" not in upstream_error.headers
    assert upstream_error.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert upstream_error.headers["keygate-connection"]

    big = klaviyo.http.get("/klaviyo/download/300000?f='x'")
    assert big.status_code == 200
    assert big.content == b"k" * 300_000


def test_exact_bytes_requests_report_upstream_failures(
    keygate: KeygateHarness, klaviyo: Tenant
) -> None:
    assert_error(klaviyo.http.get("/klaviyo/hang?f='x'"), 504, "upstream_timeout")
    keygate.import_connection(klaviyo, "closed-port", {"api_key": "k"}, method="API_KEY")
    assert_error(klaviyo.http.get("/closed-port/x?f='x'"), 502, "upstream_unreachable")


def test_exact_bytes_requests_reach_only_the_app_host(
    keygate: KeygateHarness, klaviyo: Tenant, recording: RecordingUpstream
) -> None:
    with httpx.Client(base_url=keygate.url) as anonymous:
        response = anonymous.get("/klaviyo/api/x?f='x'")
    assert_error(response, 401, "invalid_api_key")
    assert recording.seen == []
    assert _get(keygate, klaviyo, b"/klaviyo/api/{x}?f='x'")[0] == 200
    assert len(recording.seen) == 1
    # The Host the upstream saw is the app's: the request went nowhere else.
    base_url = keygate.runtime.apps["klaviyo"].base_url
    assert recording.seen[0].header("host") == base_url.split("://", 1)[1].split("/", 1)[0]
    assert recording.seen[0].raw_path == b"/api/{x}"


def test_exact_bytes_requests_get_the_refresh_and_replay_on_401(
    sandboxed: SandboxedKeygate,
) -> None:
    tenant = sandboxed.tenant()
    try:
        chosen = cached_route_then_expired(sandboxed, tenant)
        before = sandboxed.cc.admin("stats")
        response = tenant.http.get(
            "/constant-contact/v3/account/summary?extra='kept'", headers=chosen
        )
        after = sandboxed.cc.admin("stats")
        assert response.status_code == 200, response.text
        assert after["token_requests_total"] - before["token_requests_total"] == 1
        assert after["api_calls"] - before["api_calls"] == 2  # the 401, then the replay
    finally:
        tenant.close()


@pytest.mark.parametrize("value", ["é".encode(), "5 €".encode()])
def test_a_non_ascii_response_header_is_no_500(klaviyo: Tenant, value: bytes) -> None:
    # The pooled client cannot read such a value: that header is dropped, the response kept.
    response = klaviyo.http.get("/klaviyo/echo-header", headers={"x-echo": value})
    assert response.status_code == 200, response.text
    assert "x-echo" not in response.headers
    assert response.headers["x-plain"] == "kept"
    # Through the exact client (a query byte the pooled one would rewrite) it passes unchanged.
    response = klaviyo.http.get("/klaviyo/echo-header?f='x'", headers={"x-echo": value})
    assert response.status_code == 200, response.text
    assert dict(response.headers.raw)[b"x-echo"] == value


def test_a_latin1_header_value_goes_and_comes_back_unchanged(klaviyo: Tenant) -> None:
    # Not UTF-8: the request goes by the exact client, and so does its response.
    response = klaviyo.http.get("/klaviyo/echo-header", headers={"x-echo": b"caf\xe9"})
    assert response.status_code == 200, response.text
    assert dict(response.headers.raw)[b"x-echo"] == b"caf\xe9"
