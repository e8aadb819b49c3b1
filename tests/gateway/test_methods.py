"""The gateway forwards only the methods an API uses; every other method is a 405 with `Allow`."""

from __future__ import annotations

import httpx
import pytest

from tests.support.harness import KeygateHarness, Tenant
from tests.support.raw_http import error_code, raw_request
from tests.support.upstream import RecordingUpstream

FORWARDED = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TOKEN = "cc-stored-token-never-echoed"


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "LINK", "get"])
def test_other_methods_get_405_and_reach_no_upstream(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, method: str
) -> None:
    # The recording upstream echoes every request it gets, headers included, as a TRACE-echoing
    # server would: forwarding TRACE handed the injected token back to the caller.
    keygate.import_connection(tenant, "constant-contact", {"access_token": TOKEN})
    keygate.recorder.urls.clear()
    status, headers, body = raw_request(
        keygate.port,
        b"/constant-contact/v3/x",
        {"Authorization": f"Bearer {tenant.key}"},
        method=method.encode(),
    )
    assert status == 405, body
    assert headers["keygate-error"] == "method_not_allowed"
    assert error_code(body) == "method_not_allowed"
    assert headers["allow"] == ", ".join(FORWARDED)
    assert TOKEN.encode() not in body
    assert recording.seen == []
    assert keygate.recorder.urls == []


def test_the_forwarded_methods_reach_the_upstream(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "constant-contact", {"access_token": TOKEN})
    for method in FORWARDED:
        response = tenant.http.request(method, "/constant-contact/v3/x")
        assert response.status_code == 200, (method, response.text)
    assert [seen.method for seen in recording.seen] == FORWARDED


def test_control_plane_405_carries_allow(keygate: KeygateHarness, tenant: Tenant) -> None:
    response = tenant.http.put("/connections")
    assert response.status_code == 405
    assert response.headers["keygate-error"] == "method_not_allowed"
    # Every route on the path, not only the first one Starlette tried.
    assert response.headers["allow"] == "GET, POST"
    assert tenant.http.patch("/connections/some-id").headers["allow"] == "GET, DELETE"
    with httpx.Client(base_url=keygate.url) as anonymous:
        response = anonymous.post("/healthz")
        assert response.status_code == 405
        assert response.headers["keygate-error"] == "method_not_allowed"
        assert response.headers["allow"] == "GET"
