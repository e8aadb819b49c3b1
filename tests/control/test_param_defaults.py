"""A connection parameter's `default`: taken when `POST /connections` leaves it out, shown by
`GET /apps/{app}`, and pre-filled on the connect page when it is still asked there."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from keygate.store.events import OPERATOR
from tests.support.harness import KeygateHarness, Tenant


def test_a_left_out_parameter_takes_its_default(tenant: Tenant) -> None:
    detail = tenant.http.get("/apps/microsoft-outlook").json()["app"]
    (tenant_param,) = detail["params"]["OAUTH2"]
    assert tenant_param["name"] == "tenant"
    assert tenant_param["default"] == "common"
    for app in ("microsoft-outlook", "microsoft-teams"):
        created = tenant.http.post("/connections", json={"app": app})
        assert created.status_code == 201, created.text
        assert created.json()["connection"]["params"] == {"tenant": "common"}
    given = tenant.http.post(
        "/connections",
        json={"app": "microsoft-outlook", "params": {"tenant": "contoso.onmicrosoft.com"}},
    )
    assert given.status_code == 201, given.text
    assert given.json()["connection"]["params"] == {"tenant": "contoso.onmicrosoft.com"}
    # A given value is still checked against the pattern; the default does not stand in.
    bad = tenant.http.post(
        "/connections", json={"app": "microsoft-outlook", "params": {"tenant": "a_b"}}
    )
    assert bad.status_code == 400
    assert "params.tenant" in bad.json()["error"]["message"]


def test_the_connect_page_prefills_the_default(keygate: KeygateHarness, tenant: Tenant) -> None:
    # A connection stored without the parameter, as the dashboard (/ui) creates them.
    async def make() -> str:
        record = await keygate.runtime.connections.create(
            tenant.workspace_id, "microsoft-outlook", "OAUTH2", {}, actor=OPERATOR
        )
        return record.id

    connection_id = keygate.run(make())
    url = tenant.http.get(f"/connections/{connection_id}").json()["connection"]["url"]
    assert parse_qs(urlsplit(url).query)["session_token"]
    page = httpx.get(url, timeout=30)
    assert page.status_code == 200, page.text
    assert 'name="param.tenant"' in page.text
    assert 'value="common"' in page.text
