"""The sandbox registry: one entry per catalog app, URLs derived from the catalog, demo data."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Route

from keygate.catalog.loader import load_catalog
from keygate.sandbox import SANDBOXES, SandboxConfig, SandboxSpec, sandbox_for, sandbox_urls
from keygate.sandbox.registry import sandbox_ports

ORIGIN = "http://127.0.0.1:9999"
PRIVATE_KEY = {"Authorization": "Klaviyo-API-Key pk_sandbox_0123456789abcdef"}
REVISION = {"revision": "2026-10-15"}


def test_every_sandbox_stands_in_for_a_catalog_app() -> None:
    catalog = load_catalog()
    assert [spec.app for spec in SANDBOXES] == ["klaviyo", "constant-contact"]
    assert all(spec.app in catalog for spec in SANDBOXES)
    assert sandbox_ports(9010) == {"klaviyo": 9010, "constant-contact": 9011}
    with pytest.raises(KeyError):
        sandbox_for("hubspot")


def test_urls_are_the_catalogs_paths_on_the_sandbox_origin() -> None:
    catalog = load_catalog()
    assert sandbox_urls(catalog["klaviyo"], ORIGIN) == {
        "base_url": ORIGIN,
        "authorize_url": f"{ORIGIN}/oauth/authorize",
        "token_url": f"{ORIGIN}/oauth/token",
        "revoke_url": f"{ORIGIN}/oauth/revoke",
    }
    assert sandbox_urls(catalog["constant-contact"], ORIGIN + "/") == {
        "base_url": ORIGIN,
        "authorize_url": f"{ORIGIN}/oauth2/default/v1/authorize",
        "token_url": f"{ORIGIN}/oauth2/default/v1/token",
        "device_authorization_url": f"{ORIGIN}/oauth2/default/v1/device/authorize",
    }


@pytest.mark.parametrize("spec", SANDBOXES, ids=lambda spec: spec.app)
def test_each_derived_oauth_url_is_served_by_the_sandbox(spec: SandboxSpec) -> None:
    """The catalog's OAuth paths are routes of the sandbox, so deriving them cannot drift."""
    app = spec.create(SandboxConfig(), None)
    served = {route.path for route in app.routes if isinstance(route, Route)}
    urls = sandbox_urls(load_catalog()[spec.app], ORIGIN)
    for name, url in urls.items():
        if name != "base_url":
            assert url.removeprefix(ORIGIN) in served, name


async def test_a_sandbox_starts_empty_unless_asked_for_demo_data() -> None:
    empty = sandbox_for("klaviyo").create(SandboxConfig(), None)
    seeded = sandbox_for("klaviyo").create(SandboxConfig(seed_data=True), None)
    headers = {**PRIVATE_KEY, **REVISION}
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=empty), base_url=ORIGIN) as bare,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=seeded), base_url=ORIGIN) as demo,
    ):
        assert (await bare.get("/api/profiles", headers=headers)).json()["data"] == []
        profiles = (await demo.get("/api/profiles", headers=headers)).json()["data"]
        assert {p["attributes"]["email"] for p in profiles} == {
            "sarah.mason@example.com",
            "diego.ramirez@example.com",
            "amara.okafor@example.com",
        }
        lists = (await demo.get("/api/lists", headers=headers)).json()["data"]
        by_name = {item["attributes"]["name"]: item["id"] for item in lists}
        assert set(by_name) == {"Newsletter", "VIP Customers"}
        vip = await demo.get(f"/api/lists/{by_name['VIP Customers']}/profiles", headers=headers)
        assert [p["attributes"]["first_name"] for p in vip.json()["data"]] == ["Diego"]
        # The admin reset empties a seeded sandbox too (tests rely on a known state).
        assert (await demo.post("/_sandbox/reset")).status_code == 200
        assert (await demo.get("/api/profiles", headers=headers)).json()["data"] == []


async def test_constant_contact_demo_data() -> None:
    seeded = sandbox_for("constant-contact").create(SandboxConfig(seed_data=True), None)
    state = seeded.state.sandbox
    token = state.mint_direct().access_token
    bearer = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=seeded)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as cc:
        contacts = (await cc.get("/v3/contacts", headers=bearer)).json()["contacts"]
        assert len(contacts) == 3
        lists = (await cc.get("/v3/contact_lists", headers=bearer)).json()["lists"]
        assert {item["name"] for item in lists} == {"Monthly Newsletter", "Customers"}
        tags = (await cc.get("/v3/contact_tags", headers=bearer)).json()["tags"]
        assert {tag["name"] for tag in tags} == {"Spring Fair 2026", "Wholesale"}
        newsletter = next(item["list_id"] for item in lists if item["name"] == "Monthly Newsletter")
        members = await cc.get("/v3/contacts", params={"lists": newsletter}, headers=bearer)
        assert {c["first_name"] for c in members.json()["contacts"]} == {"Jordan", "Priya"}
