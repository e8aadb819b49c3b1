"""Bodies stream through the gateway in both directions, and upstream errors pass untouched."""

from __future__ import annotations

from collections.abc import Iterator

from tests.support.harness import KeygateHarness, Tenant
from tests.support.upstream import RecordingUpstream

MB = 1024 * 1024


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"u" * piece


def test_5mb_upload_streams_through(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "constant-contact", {"access_token": "cc"})
    response = tenant.http.post("/constant-contact/v3/upload", content=_chunks(5 * MB))
    assert response.status_code == 200
    echo = response.json()
    assert echo["body_bytes"] == 5 * MB
    # Arrived in pieces, i.e. Keygate forwarded chunks instead of one buffered body.
    assert echo["body_chunks"] > 1


def test_small_body_with_length_is_forwarded(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    body = b'{"data": {"type": "profile"}}'
    response = tenant.http.post(
        "/klaviyo/api/profiles", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.json()["body_bytes"] == len(body)
    assert recording.seen[-1].header("content-length") == str(len(body))
    assert recording.seen[-1].header("content-type") == "application/json"


def test_50mb_download_streams_through(keygate: KeygateHarness, tenant: Tenant) -> None:
    keygate.import_connection(tenant, "constant-contact", {"access_token": "cc"})
    received = 0
    pieces = 0
    with tenant.http.stream("GET", f"/constant-contact/download/{50 * MB}") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(50 * MB)
        for chunk in response.iter_raw():
            received += len(chunk)
            pieces += 1
    assert received == 50 * MB
    assert pieces > 1


def test_upstream_errors_pass_through_untouched(keygate: KeygateHarness, tenant: Tenant) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    for code in (400, 404, 409, 429, 500, 503):
        response = tenant.http.get(f"/klaviyo/status/{code}")
        assert response.status_code == code
        assert response.json() == {"errors": [{"status": code, "detail": "from upstream"}]}
        assert response.headers["x-upstream"] == "yes"
        assert response.headers["retry-after"] == "7"
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert "keygate-error" not in response.headers


def test_redirects_pass_through_unfollowed(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    response = tenant.http.get("/klaviyo/redirect", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "https://elsewhere.example/x"
    assert len(keygate.recorder.urls) >= 1
    assert all("elsewhere.example" not in url for url in keygate.recorder.urls)


def test_head_request_gets_headers_without_body(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    response = tenant.http.head(f"/klaviyo/download/{MB}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(MB)
    assert response.content == b""
    assert recording.seen[-1].method == "HEAD"
