"""The official Klaviyo Python SDK (`klaviyo-api`), at its defaults, through Keygate.

A user points the SDK's host at Keygate's `/klaviyo` and passes a Keygate key as the access
token (the SDK sends it as `Authorization: Bearer …`); Keygate injects the connection's
private key and forwards to the Klaviyo sandbox. The SDK sends its own `revision` (2026-10-15
for 25.x), which the sandbox must accept as real Klaviyo does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from klaviyo_api import KlaviyoAPI

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


@pytest.fixture
def sdk(sandboxed: SandboxedKeygate) -> Iterator[tuple[KlaviyoAPI, Tenant]]:
    """The SDK bound to a fresh workspace holding one Klaviyo private-key connection."""
    tenant = sandboxed.tenant()
    sandboxed.keygate.import_connection(
        tenant, "klaviyo", {"api_key": DEFAULT_PRIVATE_KEY}, method="API_KEY"
    )
    client = KlaviyoAPI(
        api_key=None,  # type: ignore[arg-type]  # the SDK's documented way to use a token
        access_token=tenant.key,
        test_host=f"{sandboxed.keygate.url}/klaviyo",
        max_retries=0,
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

    # Every call reached the sandbox (none was answered by Keygate or refused there).
    assert sandboxed.klaviyo.state.stats.api_calls - calls_before == 7
