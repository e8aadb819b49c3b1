"""A Keygate key in the app's native credential slot (where its own SDK sends the credential).

Klaviyo's SDK in API-key mode sends `Authorization: Klaviyo-API-Key <key>`; the catalog injects
the private key the same way, so Keygate accepts its own key there. Test apps declare a custom
header slot (`header-key`: `X-Api-Key`) and a query slot (`query-key`: `?api_key=`). In every
case the caller's key is never forwarded, and a wrong value is the usual 401.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.harness import KeygateHarness, Tenant
from tests.support.upstream import RecordingUpstream, Seen


@pytest.fixture
def bare(keygate: KeygateHarness) -> Iterator[httpx.Client]:
    """An HTTP client that sends no Authorization of its own."""
    with httpx.Client(base_url=keygate.url, timeout=30) as client:
        yield client


def _nowhere(seen: Seen, key: str) -> None:
    """The caller's key is in no header, path or query the upstream received."""
    assert all(key not in value for _, value in seen.headers), seen.headers
    assert key.encode() not in seen.raw_path + seen.query


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["keygate-error"] == "invalid_api_key"
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_klaviyo_api_key_slot_is_accepted_and_never_forwarded(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, bare: httpx.Client
) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"api_key": "pk_slot123"}, method="API_KEY")
    response = bare.get(
        "/klaviyo/api/profiles?page[size]=5",
        headers={"Authorization": f"Klaviyo-API-Key {tenant.key}"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["keygate-connection"] == conn.id
    seen = recording.seen[-1]
    assert seen.header_values("authorization") == ["Klaviyo-API-Key pk_slot123"]
    assert seen.query == b"page[size]=5"
    _nowhere(seen, tenant.key)


def test_klaviyo_slot_also_serves_an_oauth_connection(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, bare: httpx.Client
) -> None:
    # The slot is the app's, not the connection's: any connection of the app is reachable.
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl-oauth-token"})
    response = bare.get(
        "/klaviyo/api/lists", headers={"Authorization": f"Klaviyo-API-Key {tenant.key}"}
    )
    assert response.status_code == 200, response.text
    assert recording.seen[-1].header_values("authorization") == ["Bearer kl-oauth-token"]
    _nowhere(recording.seen[-1], tenant.key)


def test_a_wrong_value_in_the_slot_is_401_and_nothing_is_forwarded(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, bare: httpx.Client
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"api_key": "pk_slot123"}, method="API_KEY")
    for value in (
        "Klaviyo-API-Key pk_live_not_a_keygate_key",
        "Klaviyo-API-Key kg_not_a_real_key_0000",
        "kg_bare",
    ):
        _refused(bare.get("/klaviyo/api/profiles", headers={"Authorization": value}))
    # Constant Contact's catalog declares no such slot: its SDK-style header is no key.
    keygate.import_connection(tenant, "constant-contact", {"access_token": "cc-token"})
    _refused(
        bare.get(
            "/constant-contact/v3/contacts",
            headers={"Authorization": f"Klaviyo-API-Key {tenant.key}"},
        )
    )
    assert recording.seen == []


def test_bearer_still_works_and_wins_over_the_slot(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, bare: httpx.Client
) -> None:
    keygate.import_connection(tenant, "header-key", {"api_key": "hk-secret"}, method="API_KEY")
    response = bare.get(
        "/header-key/v1/items",
        headers={"Authorization": f"bearer {tenant.key}", "X-Api-Key": "not-a-key"},
    )
    assert response.status_code == 200, response.text
    # With a Bearer, the slot's header is the caller's own, replaced by the injected one.
    assert recording.seen[-1].header_values("x-api-key") == ["hk-secret"]


def test_a_custom_header_slot(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, bare: httpx.Client
) -> None:
    keygate.import_connection(tenant, "header-key", {"api_key": "hk-secret"}, method="API_KEY")
    response = bare.get(
        "/header-key/v1/items", headers=[("X-Api-Key", tenant.key), ("X-Kept", "1")]
    )
    assert response.status_code == 200, response.text
    seen = recording.seen[-1]
    assert seen.header_values("x-api-key") == ["hk-secret"]
    assert seen.header("x-kept") == "1"
    _nowhere(seen, tenant.key)

    recording.clear()
    _refused(bare.get("/header-key/v1/items", headers={"X-Api-Key": "hk-secret"}))
    assert recording.seen == []


def test_a_query_slot_is_stripped_before_forwarding(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, bare: httpx.Client
) -> None:
    values = {"api_key": "qk-secret", "account": "42"}
    keygate.import_connection(tenant, "query-key", values, method="API_KEY")
    url = bare.base_url.join("/query-key/v1/items").copy_with(
        query=f"page=2&api_key={tenant.key}&filter=a%26b".encode()
    )
    response = bare.get(url)
    assert response.status_code == 200, response.text
    seen = recording.seen[-1]
    assert seen.query == b"page=2&filter=a%26b&api_key=qk-secret"
    assert seen.header_values("x-account") == ["acct-42"]
    _nowhere(seen, tenant.key)

    # The key alone: the injected parameter is then the whole query.
    assert bare.get("/query-key/v1/items", params={"api_key": tenant.key}).status_code == 200
    assert recording.seen[-1].query == b"api_key=qk-secret"

    recording.clear()
    _refused(bare.get("/query-key/v1/items", params={"api_key": "wrong", "page": "2"}))
    assert recording.seen == []
