"""The official Klaviyo Python SDK (`klaviyo-api`), at its defaults, through Keygate.

A user points the SDK's host at Keygate's `/klaviyo` and passes a Keygate key where the SDK
takes its credential: as the access token (the SDK sends `Authorization: Bearer …`) or as the
private API key (it sends `Authorization: Klaviyo-API-Key …`, the slot the catalog injects the
private key into). Keygate injects the connection's private key and forwards to the Klaviyo
sandbox. The SDK sends its own `revision` (2026-10-15 for 25.x), which the sandbox must accept
as real Klaviyo does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import UnauthorizedException

from keygate.sandbox import DEFAULT_PRIVATE_KEY
from tests.support.databases import fresh_database
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxedKeygate]:
    """Keygate and sandboxes of this module's own (the session's are shared with data tests)."""
    directory = tmp_path_factory.mktemp("keygate-sdk")
    made = SandboxedKeygate(directory, fresh_database(directory, "keygate_sdk"))
    yield made
    made.stop()


@pytest.fixture(params=["access_token", "api_key"])
def sdk(
    sandboxed: SandboxedKeygate, request: pytest.FixtureRequest
) -> Iterator[tuple[KlaviyoAPI, Tenant]]:
    """The SDK bound to a fresh workspace holding one Klaviyo private-key connection, given the
    Keygate key in one of its two credential modes; only the host is changed besides."""
    tenant = sandboxed.tenant()
    sandboxed.keygate.import_connection(
        tenant, "klaviyo", {"api_key": DEFAULT_PRIVATE_KEY}, method="API_KEY"
    )
    host = f"{sandboxed.keygate.url}/klaviyo"
    if request.param == "api_key":
        client = KlaviyoAPI(api_key=tenant.key, test_host=host)
    else:
        client = KlaviyoAPI(
            api_key=None,  # type: ignore[arg-type]  # the SDK's documented way to use a token
            access_token=tenant.key,
            test_host=host,
        )
    yield client, tenant
    tenant.close()


def _data(answer: Any) -> Any:
    # The SDK parses each answer into its pydantic models (a check of the sandbox's shapes too).
    return answer.to_dict()["data"]


def test_sdk_default_revision_is_newer_than_the_catalogs() -> None:
    """Guards the point of this file: the SDK does not send the catalog's default revision."""
    assert KlaviyoAPI._REVISION >= "2026-10-15"


def test_official_sdk_calls_go_through_keygate_to_the_sandbox(
    sdk: tuple[KlaviyoAPI, Tenant], sandboxed: SandboxedKeygate
) -> None:
    client, _ = sdk
    calls_before = sandboxed.klaviyo.state.stats.api_calls

    accounts = _data(client.Accounts.get_accounts())
    assert accounts[0]["type"] == "account"

    email = f"sdk-{uuid.uuid4().hex[:8]}@example.com"
    created = _data(
        client.Profiles.create_profile(
            {"data": {"type": "profile", "attributes": {"email": email, "first_name": "Ada"}}}
        )
    )
    assert created["attributes"]["email"] == email

    found = _data(client.Profiles.get_profiles(filter=f'equals(email,"{email}")'))
    assert [profile["id"] for profile in found] == [created["id"]]

    fetched = _data(client.Profiles.get_profile(created["id"]))
    assert fetched["attributes"]["first_name"] == "Ada"

    made = _data(
        client.Lists.create_list({"data": {"type": "list", "attributes": {"name": "SDK list"}}})
    )
    client.Lists.add_profiles_to_list(
        made["id"], {"data": [{"type": "profile", "id": created["id"]}]}
    )
    members = _data(client.Lists.get_profiles_for_list(made["id"]))
    assert [profile["id"] for profile in members] == [created["id"]]

    updated = _data(
        client.Profiles.update_profile(
            created["id"],
            {"data": {"type": "profile", "id": created["id"], "attributes": {"last_name": "L"}}},
        )
    )
    assert updated["attributes"]["last_name"] == "L"

    # Every call reached the sandbox (none was answered by Keygate or refused there).
    assert sandboxed.klaviyo.state.stats.api_calls - calls_before == 8


def test_official_sdk_follows_cursor_pages_through_keygate(
    sdk: tuple[KlaviyoAPI, Tenant],
) -> None:
    client, _ = sdk
    tag = uuid.uuid4().hex[:8]
    emails = [f"page-{tag}-{n}@example.com" for n in range(3)]
    for email in emails:
        client.Profiles.create_profile(
            {"data": {"type": "profile", "attributes": {"email": email}}}
        )
    wanted = "any(email,[" + ",".join(f'"{email}"' for email in emails) + "])"

    first = client.Profiles.get_profiles(filter=wanted, page_size=2).to_dict()
    assert len(first["data"]) == 2
    # The next link points at the sandbox; the SDK takes its cursor (it strips https links only).
    cursor = parse_qs(urlsplit(first["links"]["next"]).query)["page[cursor]"][0]
    second = client.Profiles.get_profiles(filter=wanted, page_size=2, page_cursor=cursor).to_dict()
    assert len(second["data"]) == 1
    assert not second["links"].get("next")
    seen = [profile["attributes"]["email"] for profile in first["data"] + second["data"]]
    assert sorted(seen) == sorted(emails)


def test_a_wrong_private_key_in_api_key_mode_is_refused_by_keygate(
    sandboxed: SandboxedKeygate,
) -> None:
    # A real Klaviyo key (not a Keygate key) in the SDK's slot: Keygate's 401, nothing forwarded.
    client = KlaviyoAPI(
        api_key=DEFAULT_PRIVATE_KEY, test_host=f"{sandboxed.keygate.url}/klaviyo", max_retries=0
    )
    calls_before = sandboxed.klaviyo.state.stats.api_calls
    with pytest.raises(UnauthorizedException) as raised:
        client.Accounts.get_accounts()
    assert raised.value.status == 401
    assert raised.value.headers["Keygate-Error"] == "invalid_api_key"
    assert sandboxed.klaviyo.state.stats.api_calls == calls_before
