"""Where a webhook delivery connects: pinned to an address the allow-list admitted."""

from __future__ import annotations

import pytest

from keygate.errors import BadRequest
from keygate.webhooks.destinations import Destination, DestinationPolicy


async def test_a_name_admitted_by_its_addresses_is_pinned_to_one_of_them() -> None:
    async def dns(host: str) -> list[str]:
        return {"hooks.example.test": ["::1", "10.0.0.5"]}.get(host, [])

    policy = DestinationPolicy(["10.0.0.0/8", "::1/128"], resolve=dns)
    https = await policy.destination("https://hooks.example.test:8443/in?x=1")
    assert https == Destination(
        "https://10.0.0.5:8443/in?x=1",
        {"host": "hooks.example.test:8443"},
        {"sni_hostname": "hooks.example.test"},  # the certificate is checked against the name
    )
    assert https.pinned

    async def six(host: str) -> list[str]:
        return ["::1"]

    only_v6 = await DestinationPolicy(["::1/128"], resolve=six).destination("http://h.test/x")
    assert only_v6 == Destination("http://[::1]/x", {"host": "h.test"}, {})


async def test_what_is_not_resolved_by_the_check_is_not_pinned() -> None:
    async def dns(host: str) -> list[str]:
        raise AssertionError("no lookup expected")

    policy = DestinationPolicy(["hooks.example.com", "127.0.0.0/8"], resolve=dns)
    # A name the operator listed by name, and an address: nothing to look up or pin.
    assert await policy.destination("https://hooks.example.com/x") == Destination(
        "https://hooks.example.com/x"
    )
    assert not (await policy.destination("http://127.0.0.1:9/x")).pinned
    # No list: any http(s) URL, connected as usual.
    assert await DestinationPolicy([], resolve=dns).destination("http://a.test/") == Destination(
        "http://a.test/"
    )


async def test_a_name_with_one_address_outside_the_list_is_refused() -> None:
    async def dns(host: str) -> list[str]:
        return ["127.0.0.1", "10.9.9.9"]

    with pytest.raises(BadRequest, match="KEYGATE_WEBHOOK_ALLOWED_DESTINATIONS"):
        await DestinationPolicy(["127.0.0.0/8"], resolve=dns).destination("http://mixed.test/")
