"""Klaviyo `/api` endpoints: behaviour, JSON:API shapes, and the vendor spec for every answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from keygate.sandbox.klaviyo.store import KlaviyoState

from .specs import validate_klaviyo

KEY = {
    "Authorization": "Klaviyo-API-Key pk_sandbox_0123456789abcdef",
    "revision": "2026-01-15",
    "Accept": "application/vnd.api+json",
}
JSONAPI = {**KEY, "Content-Type": "application/vnd.api+json"}


def profile_doc(**attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": attributes}}


async def create_profile(client: httpx.AsyncClient, email: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/profiles", json=profile_doc(email=email, **extra), headers=JSONAPI
    )
    assert response.status_code == 201, response.text
    validate_klaviyo("/api/profiles", "post", response)
    data: dict[str, Any] = response.json()["data"]
    return data


async def create_list(client: httpx.AsyncClient, name: str) -> str:
    body = {"data": {"type": "list", "attributes": {"name": name}}}
    response = await client.post("/api/lists", json=body, headers=JSONAPI)
    assert response.status_code == 201, response.text
    validate_klaviyo("/api/lists", "post", response)
    list_id: str = response.json()["data"]["id"]
    return list_id


async def test_create_and_get_profile(klaviyo: httpx.AsyncClient) -> None:
    created = await create_profile(
        klaviyo,
        "ada@example.com",
        first_name="Ada",
        location={"city": "London"},
        properties={"vip": True},
    )
    assert len(created["id"]) == 26
    assert created["attributes"]["email"] == "ada@example.com"
    assert created["links"]["self"] == f"http://klaviyo.test/api/profiles/{created['id']}/"
    got = await klaviyo.get(f"/api/profiles/{created['id']}", headers=KEY)
    assert got.status_code == 200
    validate_klaviyo("/api/profiles/{id}", "get", got)
    attributes = got.json()["data"]["attributes"]
    assert attributes["location"]["city"] == "London"
    assert attributes["properties"] == {"vip": True}


async def test_duplicate_profile_conflict(klaviyo: httpx.AsyncClient) -> None:
    first = await create_profile(klaviyo, "dup@example.com")
    again = await klaviyo.post(
        "/api/profiles", json=profile_doc(email="dup@example.com"), headers=JSONAPI
    )
    assert again.status_code == 409
    validate_klaviyo("/api/profiles", "post", again)
    error = again.json()["errors"][0]
    assert error["code"] == "duplicate_profile"
    assert error["status"] == 409
    assert error["meta"] == {"duplicate_profile_id": first["id"]}
    assert set(error) == {"id", "status", "code", "title", "detail", "source", "meta"}


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"first_name": "NoId"}, "/data/attributes"),
        ({"email": "not-an-email"}, "/data/attributes/email"),
        ({"email": "a@b.co", "favourite": "x"}, "/data/attributes/favourite"),
        ({"phone_number": "12345"}, "/data/attributes/phone_number"),
    ],
)
async def test_profile_validation(
    klaviyo: httpx.AsyncClient, attributes: dict[str, Any], pointer: str
) -> None:
    response = await klaviyo.post("/api/profiles", json=profile_doc(**attributes), headers=JSONAPI)
    assert response.status_code == 400
    validate_klaviyo("/api/profiles", "post", response)
    assert response.json()["errors"][0]["source"] == {"pointer": pointer}


async def test_wrong_resource_type_and_media_type(klaviyo: httpx.AsyncClient) -> None:
    body = {"data": {"type": "list", "attributes": {"email": "a@b.co"}}}
    assert (await klaviyo.post("/api/profiles", json=body, headers=JSONAPI)).status_code == 409
    plain = {**KEY, "Content-Type": "text/plain"}
    response = await klaviyo.post("/api/profiles", content=b"{}", headers=plain)
    assert response.status_code == 415
    validate_klaviyo("/api/profiles", "post", response)


async def test_patch_profile(klaviyo: httpx.AsyncClient) -> None:
    created = await create_profile(klaviyo, "p@example.com", first_name="Old")
    other = await create_profile(klaviyo, "taken@example.com")
    url = f"/api/profiles/{created['id']}"
    body = {
        "data": {
            "type": "profile",
            "id": created["id"],
            "attributes": {"first_name": "New", "title": None},
        }
    }
    response = await klaviyo.patch(url, json=body, headers=JSONAPI)
    assert response.status_code == 200
    validate_klaviyo("/api/profiles/{id}", "patch", response)
    assert response.json()["data"]["attributes"]["first_name"] == "New"
    body["data"]["attributes"] = {"email": "taken@example.com"}
    conflict = await klaviyo.patch(url, json=body, headers=JSONAPI)
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["meta"]["duplicate_profile_id"] == other["id"]


async def test_unknown_profile_404(klaviyo: httpx.AsyncClient) -> None:
    response = await klaviyo.get("/api/profiles/01NOPE", headers=KEY)
    assert response.status_code == 404
    validate_klaviyo("/api/profiles/{id}", "get", response)
    assert response.json()["errors"][0]["code"] == "not_found"


async def test_profiles_filter_and_sparse_fields(klaviyo: httpx.AsyncClient) -> None:
    for index in range(3):
        await create_profile(klaviyo, f"u{index}@example.com", first_name=f"U{index}")
    params = {"filter": 'equals(email,"u1@example.com")', "fields[profile]": "email,location.city"}
    response = await klaviyo.get("/api/profiles", params=params, headers=KEY)
    assert response.status_code == 200
    validate_klaviyo("/api/profiles", "get", response)
    data = response.json()["data"]
    assert len(data) == 1
    assert data[0]["attributes"] == {"email": "u1@example.com", "location": {"city": None}}
    any_of = await klaviyo.get(
        "/api/profiles",
        params={"filter": "any(email,['u0@example.com','u2@example.com'])"},
        headers=KEY,
    )
    assert sorted(p["attributes"]["email"] for p in any_of.json()["data"]) == [
        "u0@example.com",
        "u2@example.com",
    ]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"filter": "equals(email,"}, "filter"),
        ({"filter": 'equals(first_name,"x")'}, "filter"),
        ({"page[size]": "101"}, "page[size]"),
        ({"page[size]": "0"}, "page[size]"),
        ({"page[cursor]": "!!"}, "page[cursor]"),
        ({"fields[profile]": "shoe_size"}, "fields[profile]"),
        ({"sort": "first_name"}, "sort"),
    ],
)
async def test_profiles_bad_parameters(
    klaviyo: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    response = await klaviyo.get("/api/profiles", params=params, headers=KEY)
    assert response.status_code == 400
    validate_klaviyo("/api/profiles", "get", response)
    assert response.json()["errors"][0]["source"] == {"parameter": parameter}


async def test_profiles_pagination_links(klaviyo: httpx.AsyncClient) -> None:
    emails = [f"page{index}@example.com" for index in range(5)]
    for email in emails:
        await create_profile(klaviyo, email)
    seen: list[str] = []
    response = await klaviyo.get(
        "/api/profiles", params={"page[size]": "2", "sort": "email"}, headers=KEY
    )
    pages = 0
    while True:
        validate_klaviyo("/api/profiles", "get", response)
        body = response.json()
        seen += [item["attributes"]["email"] for item in body["data"]]
        pages += 1
        next_url = body["links"].get("next")
        if next_url is None:
            break
        assert next_url.startswith("http://klaviyo.test/api/profiles/?")
        assert "page%5Bcursor%5D=" in next_url
        assert parse_qs(urlsplit(next_url).query)["page[size]"] == ["2"]
        response = await klaviyo.get(next_url, headers=KEY)
    assert pages == 3
    assert seen == sorted(emails)
    assert "prev" in body["links"]


async def test_default_page_size_is_20(
    klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState
) -> None:
    klaviyo_state.config.rate_limit = False
    for index in range(21):
        await create_profile(klaviyo, f"many{index}@example.com")
    body = (await klaviyo.get("/api/profiles", headers=KEY)).json()
    assert len(body["data"]) == 20
    assert "next" in body["links"]


async def test_links_use_public_base_url(
    klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState
) -> None:
    klaviyo_state.config.public_base_url = "https://a.klaviyo.com"
    created = await create_profile(klaviyo, "pub@example.com")
    assert created["links"]["self"].startswith("https://a.klaviyo.com/api/profiles/")


async def test_lists_crud(klaviyo: httpx.AsyncClient) -> None:
    list_id = await create_list(klaviyo, "Newsletter")
    got = await klaviyo.get(f"/api/lists/{list_id}", headers=KEY)
    validate_klaviyo("/api/lists/{id}", "get", got)
    assert got.json()["data"]["attributes"]["name"] == "Newsletter"
    body = {"data": {"type": "list", "id": list_id, "attributes": {"name": "Weekly"}}}
    patched = await klaviyo.patch(f"/api/lists/{list_id}", json=body, headers=JSONAPI)
    validate_klaviyo("/api/lists/{id}", "patch", patched)
    assert patched.json()["data"]["attributes"]["name"] == "Weekly"
    deleted = await klaviyo.delete(f"/api/lists/{list_id}", headers=KEY)
    assert deleted.status_code == 204
    validate_klaviyo("/api/lists/{id}", "delete", deleted)
    gone = await klaviyo.get(f"/api/lists/{list_id}", headers=KEY)
    assert gone.status_code == 404


async def test_list_requires_name(klaviyo: httpx.AsyncClient) -> None:
    body = {"data": {"type": "list", "attributes": {}}}
    response = await klaviyo.post("/api/lists", json=body, headers=JSONAPI)
    assert response.status_code == 400
    validate_klaviyo("/api/lists", "post", response)


async def test_lists_page_size_is_at_most_10(
    klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState
) -> None:
    klaviyo_state.config.rate_limit = False
    for index in range(11):
        await create_list(klaviyo, f"L{index}")
    response = await klaviyo.get("/api/lists", headers=KEY)
    validate_klaviyo("/api/lists", "get", response)
    assert len(response.json()["data"]) == 10
    second = await klaviyo.get(response.json()["links"]["next"], headers=KEY)
    assert len(second.json()["data"]) == 1
    assert (
        await klaviyo.get("/api/lists", params={"page[size]": "11"}, headers=KEY)
    ).status_code == 400
    named = await klaviyo.get("/api/lists", params={"filter": 'equals(name,"L3")'}, headers=KEY)
    assert [item["attributes"]["name"] for item in named.json()["data"]] == ["L3"]


async def test_list_memberships(klaviyo: httpx.AsyncClient) -> None:
    list_id = await create_list(klaviyo, "Members")
    a = await create_profile(klaviyo, "a@example.com")
    b = await create_profile(klaviyo, "b@example.com")
    url = f"/api/lists/{list_id}/relationships/profiles"
    body = {"data": [{"type": "profile", "id": a["id"]}, {"type": "profile", "id": b["id"]}]}
    added = await klaviyo.post(url, json=body, headers=JSONAPI)
    assert added.status_code == 204
    validate_klaviyo("/api/lists/{id}/relationships/profiles", "post", added)
    members = await klaviyo.get(f"/api/lists/{list_id}/profiles", headers=KEY)
    validate_klaviyo("/api/lists/{id}/profiles", "get", members)
    assert {p["id"] for p in members.json()["data"]} == {a["id"], b["id"]}
    removed = await klaviyo.request(
        "DELETE", url, json={"data": [{"type": "profile", "id": a["id"]}]}, headers=JSONAPI
    )
    assert removed.status_code == 204
    validate_klaviyo("/api/lists/{id}/relationships/profiles", "delete", removed)
    members = await klaviyo.get(f"/api/lists/{list_id}/profiles", headers=KEY)
    assert [p["id"] for p in members.json()["data"]] == [b["id"]]
    unknown = await klaviyo.post(
        url, json={"data": [{"type": "profile", "id": "01X"}]}, headers=JSONAPI
    )
    assert unknown.status_code == 404
    validate_klaviyo("/api/lists/{id}/relationships/profiles", "post", unknown)


async def test_accounts(klaviyo: httpx.AsyncClient) -> None:
    response = await klaviyo.get("/api/accounts", headers=KEY)
    assert response.status_code == 200
    validate_klaviyo("/api/accounts", "get", response)
    assert response.json()["data"][0]["type"] == "account"


async def test_trailing_slash_paths(klaviyo: httpx.AsyncClient) -> None:
    response = await klaviyo.get("/api/accounts/", headers=KEY)
    assert response.status_code == 200
