"""Path attacks never send a request anywhere but the app's upstream, and get 400 invalid_path."""

from __future__ import annotations

import pytest

from keygate.errors import InvalidPath
from keygate.gateway.paths import check_native_path, check_query, split_app
from tests.support.harness import KeygateHarness, Tenant
from tests.support.raw_http import error_code, raw_request
from tests.support.upstream import RecordingUpstream

ATTACKS = [
    b"/klaviyo/..%2f..%2fetc",
    b"/klaviyo/../../etc/passwd",
    b"/klaviyo/api/../../x",
    b"/klaviyo/%2e%2e/%2E%2E/x",
    b"/klaviyo/api/./profiles",
    b"/klaviyo//evil.example/x",
    b"/klaviyo/@evil/x",
    b"/klaviyo/api%40evil.example/x",
    b"/klaviyo/http://evil.example/x",
    b"/klaviyo/https:%2f%2fevil.example",
    b"/klaviyo/\\evil.example/x",
    b"/klaviyo/api%5cprofiles",
    b"/klaviyo/api/profiles%00.json",
    b"/klaviyo/api/profiles%0d%0aX-Injected:%201",
    b"/klaviyo/api/prof%09iles",
    b"/klaviyo/api/profiles%7f",
]


@pytest.mark.parametrize("target", ATTACKS, ids=[a.decode("latin-1") for a in ATTACKS])
def test_path_attack_refused(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, target: bytes
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    keygate.recorder.urls.clear()
    status, headers, body = raw_request(
        keygate.port, target, {"Authorization": f"Bearer {tenant.key}"}
    )
    assert status == 400, body
    assert headers["keygate-error"] == "invalid_path"
    assert error_code(body) == "invalid_path"
    # Nothing reached the upstream, and Keygate's client made no request at all.
    assert recording.seen == []
    assert keygate.recorder.urls == []


def test_every_upstream_request_targets_the_app_host(
    keygate: KeygateHarness,
    tenant: Tenant,
    recording: RecordingUpstream,
    upstream: tuple[RecordingUpstream, object],
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    keygate.recorder.urls.clear()
    for target in [
        b"/klaviyo/api/profiles",
        b"/klaviyo/api/lists/ABC/relationships/profiles",
        b"/klaviyo/api/a%20b",
        *ATTACKS,
    ]:
        raw_request(keygate.port, target, {"Authorization": f"Bearer {tenant.key}"})
    origin = upstream[1].url  # type: ignore[attr-defined]
    assert len(keygate.recorder.urls) == 3
    assert all(url.startswith(origin + "/api/") for url in keygate.recorder.urls)


def test_encoded_control_characters_in_query_stay_encoded(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    # A percent-encoded newline is a legitimate query value; it travels encoded.
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    status, _, _ = raw_request(
        keygate.port,
        b"/klaviyo/api/profiles?note=a%0d%0ab",
        {"Authorization": f"Bearer {tenant.key}"},
    )
    assert status == 200
    assert recording.seen[-1].query == b"note=a%0d%0ab"


@pytest.mark.parametrize("query", [b"a=1\x01", b"a=1 2", b"a=1#frag", "a=é".encode()])
def test_raw_unsafe_query_bytes_refused(query: bytes) -> None:
    # HTTP/1.1 servers reject most of these before Keygate sees them; Keygate checks anyway.
    with pytest.raises(InvalidPath):
        check_query(query)
    # Accepted; False: nothing the pooled client would rewrite, True: bytes it would.
    assert check_query(b"page%5Bcursor%5D=abc&filter=equals(email,%22a@b.c%22)") is False
    assert check_query(b"filter=equals(a,'b')") is True


def test_the_plain_path_shortcut_never_passes_what_the_full_check_refuses() -> None:
    """`split_app` skips the full check only for paths the full check accepts unchanged."""
    import random

    alphabet = [b"a", b"Z", b"0", b"/", b".", b"%", b"2", b"f", b"e", b"@", b"\\", b"-", b"~"]
    alphabet += [b":", b"#", b" ", b"\x00", b"\x7f", b"\xff", b"?", b"=", b"_"]
    generator = random.Random(4)
    shortcut = 0
    for _ in range(20_000):
        tail = b"".join(generator.choice(alphabet) for _ in range(generator.randint(0, 12)))
        app, native, safe = split_app(b"/klaviyo/" + tail)
        if not safe:
            continue
        shortcut += 1
        assert app == "klaviyo"
        assert native == b"/" + tail
        assert check_native_path(native) == native, tail
    assert shortcut > 500  # the shortcut was really exercised


def test_split_app_keeps_the_rest_encoded() -> None:
    assert split_app(b"/klaviyo") == ("klaviyo", b"/", True)
    assert split_app(b"/klaviyo/api/profiles/") == ("klaviyo", b"/api/profiles/", True)
    assert split_app(b"/klaviyo/api/a%20b") == ("klaviyo", b"/api/a%20b", False)
    assert split_app(b"/Klaviyo/x") == ("Klaviyo", b"/x", True)  # not an app: 404 later
    assert split_app(b"/klaviyo/api/.hidden") == ("klaviyo", b"/api/.hidden", False)
    assert split_app(b"/klaviyo/api//x") == ("klaviyo", b"/api//x", False)
