"""Constant Contact `/v3` endpoints: behaviour and the vendor spec for every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from keygate.sandbox.constant_contact.store import ConstantContactState

from .specs import validate_cc


@pytest.fixture
async def api(
    cc: httpx.AsyncClient, cc_state: ConstantContactState
) -> AsyncIterator[httpx.AsyncClient]:
    """The Constant Contact client with a valid bearer token and throttling off."""
    cc_state.config.rate_limit = False
    token = (await cc.post("/_sandbox/tokens")).json()["access_token"]
    cc.headers["Authorization"] = f"Bearer {token}"
    return cc


def assert_error(response: httpx.Response, status: int, key_suffix: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 1
    assert set(body[0]) == {"error_key", "error_message"}
    assert body[0]["error_key"].endswith(key_suffix), body


async def new_list(api: httpx.AsyncClient, name: str) -> str:
    response = await api.post("/v3/contact_lists", json={"name": name, "description": "d"})
    assert response.status_code == 201, response.text
    validate_cc("/contact_lists", "post", response)
    list_id: str = response.json()["list_id"]
    return list_id


async def new_contact(api: httpx.AsyncClient, email: str, **extra: Any) -> dict[str, Any]:
    body = {
        "email_address": {"address": email, "permission_to_send": "implicit"},
        "create_source": "Account",
    }
    response = await api.post("/v3/contacts", json=body | extra)
    assert response.status_code == 201, response.text
    validate_cc("/contacts", "post", response)
    created: dict[str, Any] = response.json()
    return created


async def test_account_endpoints(api: httpx.AsyncClient) -> None:
    summary = await api.get(
        "/v3/account/summary", params={"extra_fields": "physical_address,company_logo"}
    )
    validate_cc("/account/summary", "get", summary)
    assert summary.json()["physical_address"]["country_code"] == "US"
    emails = await api.get("/v3/account/emails")
    validate_cc("/account/emails", "get", emails)
    assert isinstance(emails.json(), list)
    assert emails.json()
    confirmed = await api.get("/v3/account/emails", params={"confirm_status": "CONFIRMED"})
    assert all(item["confirm_status"] == "CONFIRMED" for item in confirmed.json())
    privileges = await api.get("/v3/account/user/privileges")
    validate_cc("/account/user/privileges", "get", privileges)
    assert isinstance(privileges.json(), list)


async def test_contact_lifecycle(api: httpx.AsyncClient) -> None:
    list_id = await new_list(api, "Customers")
    created = await new_contact(
        api, "ada@example.com", first_name="Ada", list_memberships=[list_id],
        phone_numbers=[{"phone_number": "+1 617 555 0100", "kind": "mobile"}],
    )  # fmt: skip
    contact_id = created["contact_id"]
    assert created["list_memberships"] == [list_id]
    got = await api.get(
        f"/v3/contacts/{contact_id}", params={"include": "list_memberships,phone_numbers"}
    )
    validate_cc("/contacts/{contact_id}", "get", got)
    assert got.json()["first_name"] == "Ada"
    assert got.json()["phone_numbers"][0]["kind"] == "mobile"
    put_body = {
        "email_address": {"address": "ada@example.com"},
        "first_name": "Ada L.",
        "update_source": "Contact",
    }
    updated = await api.put(f"/v3/contacts/{contact_id}", json=put_body)
    validate_cc("/contacts/{contact_id}", "put", updated)
    assert updated.json()["first_name"] == "Ada L."
    assert updated.json()["list_memberships"] == []
    deleted = await api.delete(f"/v3/contacts/{contact_id}")
    assert deleted.status_code == 204
    validate_cc("/contacts/{contact_id}", "delete", deleted)
    assert_error(await api.get(f"/v3/contacts/{contact_id}"), 404, "not_found")
    assert (await api.get("/v3/contacts/ffffffff-0000-0000-0000-000000000000")).json()[0][
        "error_key"
    ] == ("contacts.api.not_found")
    listed = await api.get("/v3/contacts", params={"status": "deleted"})
    assert [c["contact_id"] for c in listed.json()["contacts"]] == [contact_id]
    validate_cc("/contacts", "get", listed)


async def test_contact_validation(api: httpx.AsyncClient) -> None:
    await new_contact(api, "taken@example.com")
    conflict = await api.post(
        "/v3/contacts",
        json={"email_address": {"address": "TAKEN@example.com"}, "create_source": "Contact"},
    )
    assert_error(conflict, 409, "conflict")
    no_source = await api.post("/v3/contacts", json={"email_address": {"address": "x@example.com"}})
    assert_error(no_source, 400, "validation.error")
    bad_email = await api.post(
        "/v3/contacts", json={"email_address": {"address": "nope"}, "create_source": "Contact"}
    )
    assert_error(bad_email, 400, "validation.error")
    unknown_list = await api.post(
        "/v3/contacts",
        json={
            "email_address": {"address": "y@example.com"},
            "create_source": "Contact",
            "list_memberships": ["x"],
        },
    )
    assert_error(unknown_list, 400, "validation.error")
    contact_id = (await api.get("/v3/contacts")).json()["contacts"][0]["contact_id"]
    no_update_source = await api.put(
        f"/v3/contacts/{contact_id}", json={"email_address": {"address": "t@example.com"}}
    )
    assert_error(no_update_source, 400, "validation.error")
    not_json = await api.post("/v3/contacts", content=b"x", headers={"Content-Type": "text/plain"})
    assert_error(not_json, 415, "unsupported.media.type")


async def test_contacts_filters_and_count(api: httpx.AsyncClient) -> None:
    list_id = await new_list(api, "Filtered")
    await new_contact(api, "in@example.com", list_memberships=[list_id])
    await new_contact(api, "out@example.com")
    body = {"email_address": {"address": "gone@example.com", "permission_to_send": "unsubscribed"}}
    await api.post("/v3/contacts", json=body | {"create_source": "Contact"})
    by_list = (
        await api.get("/v3/contacts", params={"lists": list_id, "include_count": "true"})
    ).json()
    assert [c["email_address"]["address"] for c in by_list["contacts"]] == ["in@example.com"]
    assert by_list["contacts_count"] == 1
    by_email = (await api.get("/v3/contacts", params={"email": "out@example.com"})).json()
    assert len(by_email["contacts"]) == 1
    unsubscribed = (await api.get("/v3/contacts", params={"status": "unsubscribed"})).json()
    assert [c["email_address"]["address"] for c in unsubscribed["contacts"]] == ["gone@example.com"]
    assert "list_memberships" not in by_email["contacts"][0]
    with_include = (
        await api.get("/v3/contacts", params={"include": "list_memberships,taggings"})
    ).json()
    assert all("taggings" in c for c in with_include["contacts"])
    assert_error(await api.get("/v3/contacts", params={"status": "bogus"}), 400, "bad.request")


@pytest.mark.parametrize("limit", ["0", "501", "ten"])
async def test_contacts_limit_bounds(api: httpx.AsyncClient, limit: str) -> None:
    assert_error(await api.get("/v3/contacts", params={"limit": limit}), 400, "bad.request")


async def test_contacts_cursor_pagination(api: httpx.AsyncClient) -> None:
    emails = [f"c{index}@example.com" for index in range(5)]
    for email in emails:
        await new_contact(api, email)
    seen: list[str] = []
    response = await api.get("/v3/contacts", params={"limit": "2", "include_count": "true"})
    while True:
        validate_cc("/contacts", "get", response)
        body = response.json()
        assert body["contacts_count"] == 5
        seen += [c["email_address"]["address"] for c in body["contacts"]]
        if "_links" not in body:
            break
        href = body["_links"]["next"]["href"]
        assert href.startswith("/v3/contacts?cursor=")
        response = await api.get(href)
    assert seen == emails
    assert_error(await api.get("/v3/contacts", params={"cursor": "garbage!"}), 400, "bad.request")


async def test_sign_up_form_creates_then_updates(api: httpx.AsyncClient) -> None:
    first_list = await new_list(api, "One")
    second_list = await new_list(api, "Two")
    body = {
        "email_address": "form@example.com",
        "first_name": "Form",
        "list_memberships": [first_list],
    }
    created = await api.post("/v3/contacts/sign_up_form", json=body)
    assert created.status_code == 201
    validate_cc("/contacts/sign_up_form", "post", created)
    assert created.json()["action"] == "created"
    again = await api.post(
        "/v3/contacts/sign_up_form", json=body | {"list_memberships": [second_list]}
    )
    assert again.status_code == 200
    validate_cc("/contacts/sign_up_form", "post", again)
    assert again.json() == {"contact_id": created.json()["contact_id"], "action": "updated"}
    contact = (
        await api.get(
            f"/v3/contacts/{created.json()['contact_id']}", params={"include": "list_memberships"}
        )
    ).json()
    assert contact["list_memberships"] == [first_list, second_list]
    missing_lists = await api.post(
        "/v3/contacts/sign_up_form", json={"email_address": "x@example.com"}
    )
    assert_error(missing_lists, 400, "validation.error")


async def test_contact_counts(api: httpx.AsyncClient) -> None:
    await new_contact(api, "one@example.com")
    body = {
        "email_address": {"address": "two@example.com", "permission_to_send": "explicit"},
        "create_source": "Contact",
    }
    await api.post("/v3/contacts", json=body)
    response = await api.get("/v3/contacts/counts")
    validate_cc("/contacts/counts", "get", response)
    counts = response.json()
    assert (counts["total"], counts["implicit"], counts["explicit"], counts["new_subscriber"]) == (
        2,
        1,
        1,
        2,
    )


async def test_contact_lists(api: httpx.AsyncClient) -> None:
    list_id = await new_list(api, "Alpha")
    assert_error(await api.post("/v3/contact_lists", json={"name": "alpha"}), 409, "conflict")
    assert_error(await api.post("/v3/contact_lists", json={}), 400, "validation.error")
    await new_contact(api, "member@example.com", list_memberships=[list_id])
    got = await api.get(f"/v3/contact_lists/{list_id}", params={"include_membership_count": "all"})
    validate_cc("/contact_lists/{list_id}", "get", got)
    assert got.json()["membership_count"] == 1
    put = await api.put(f"/v3/contact_lists/{list_id}", json={"name": "Beta", "favorite": True})
    validate_cc("/contact_lists/{list_id}", "put", put)
    assert put.json()["name"] == "Beta"
    assert put.json()["favorite"] is True
    await new_list(api, "Gamma")
    listed = await api.get("/v3/contact_lists", params={"include_count": "true", "limit": "1"})
    validate_cc("/contact_lists", "get", listed)
    assert listed.json()["lists_count"] == 2
    assert listed.json()["_links"]["next"]["href"].startswith("/v3/contact_lists?cursor=")
    assert_error(await api.get("/v3/contact_lists", params={"limit": "1001"}), 400, "bad.request")
    assert (await api.get("/v3/contact_lists", params={"limit": "1000"})).status_code == 200
    deleted = await api.delete(f"/v3/contact_lists/{list_id}")
    assert deleted.status_code == 202
    validate_cc("/contact_lists/{list_id}", "delete", deleted)
    assert_error(await api.get(f"/v3/contact_lists/{list_id}"), 404, "not_found")


async def test_contact_tags(api: httpx.AsyncClient) -> None:
    created = await api.post("/v3/contact_tags", json={"name": "VIP", "tag_source": "Shopify"})
    assert created.status_code == 201
    validate_cc("/contact_tags", "post", created)
    tag_id = created.json()["tag_id"]
    assert_error(await api.post("/v3/contact_tags", json={"name": "vip"}), 409, "conflict")
    await new_contact(api, "tagged@example.com", taggings=[tag_id])
    listed = await api.get("/v3/contact_tags", params={"include_count": "true"})
    validate_cc("/contact_tags", "get", listed)
    assert listed.json()["tags"][0]["contacts_count"] == 1
    renamed = await api.put(f"/v3/contact_tags/{tag_id}", json={"name": "Gold"})
    validate_cc("/contact_tags/{tag_id}", "put", renamed)
    assert renamed.json()["name"] == "Gold"
    deleted = await api.delete(f"/v3/contact_tags/{tag_id}")
    assert deleted.status_code == 202
    validate_cc("/contact_tags/{tag_id}", "delete", deleted)
    assert_error(await api.put(f"/v3/contact_tags/{tag_id}", json={"name": "X"}), 404, "not_found")


async def test_custom_fields(api: httpx.AsyncClient) -> None:
    for label, field_type in (("Favorite Color", "string"), ("Renewal Date", "date")):
        response = await api.post(
            "/v3/contact_custom_fields", json={"label": label, "type": field_type}
        )
        assert response.status_code == 201
        validate_cc("/contact_custom_fields", "post", response)
    assert response.json()["name"] == "renewal_date"
    bad = await api.post("/v3/contact_custom_fields", json={"label": "Age", "type": "number"})
    assert_error(bad, 400, "validation.error")
    dup = await api.post(
        "/v3/contact_custom_fields", json={"label": "favorite color", "type": "string"}
    )
    assert_error(dup, 409, "conflict")
    listed = await api.get("/v3/contact_custom_fields")
    validate_cc("/contact_custom_fields", "get", listed)
    assert len(listed.json()["custom_fields"]) == 2
    field_id = response.json()["custom_field_id"]
    contact = await new_contact(
        api, "cf@example.com", custom_fields=[{"custom_field_id": field_id, "value": "2026-09-01"}]
    )
    deleted = await api.delete(f"/v3/contact_custom_fields/{field_id}")
    assert deleted.status_code == 204
    validate_cc("/contact_custom_fields/{custom_field_id}", "delete", deleted)
    got = await api.get(
        f"/v3/contacts/{contact['contact_id']}", params={"include": "custom_fields"}
    )
    assert got.json()["custom_fields"] == []
    assert_error(await api.delete(f"/v3/contact_custom_fields/{field_id}"), 404, "not_found")
