"""Catalog endpoints and pagination: what a file may declare, and the errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keygate.catalog.loader import AppOverrides, configure_app, load_app_file
from keygate.catalog.pagination import gateway_path, next_link
from keygate.errors import ConfigurationError
from tests.catalog.test_model import OAUTH, app_file

PROFILES = {
    "name": "get_profile",
    "method": "GET",
    "path": "/api/profiles/{id}",
    "summary": {"en": "Get one profile.", "zh": "获取单个用户档案。"},
    "params": [{"name": "id", "in": "path", "required": True}],
}


def test_endpoints_and_pagination_load(tmp_path: Path) -> None:
    listing = {**PROFILES, "name": "get_profiles", "path": "/api/profiles", "paginated": True}
    listing["params"] = [{"name": "page[size]", "in": "query", "type": "integer", "example": 20}]
    spec = load_app_file(
        app_file(
            tmp_path,
            OAUTH,
            endpoints=[PROFILES, listing],
            pagination={"next": "links.next", "link": "absolute", "items": "data"},
        )
    )
    assert [e.name for e in spec.endpoints] == ["get_profile", "get_profiles"]
    assert spec.endpoints[1].params[0].location == "query"
    assert spec.pagination is not None
    assert spec.pagination.items == "data"


@pytest.mark.parametrize(
    ("top", "says"),
    [
        ({"endpoints": [{**PROFILES, "params": []}]}, "path parameters id"),
        ({"endpoints": [{**PROFILES, "path": "/api/profiles/{id}?x=1"}]}, "carries no query"),
        ({"endpoints": [{**PROFILES, "name": "Get-Profile"}]}, "snake_case"),
        ({"endpoints": [PROFILES, PROFILES]}, "get_profile named twice"),
        ({"endpoints": [{**PROFILES, "summary": {"en": "Only English."}}]}, "zh"),
        ({"endpoints": [{**PROFILES, "body": {"a": 1}}]}, "takes no example body"),
        ({"endpoints": [{**PROFILES, "paginated": True}]}, "needs the app's pagination"),
        (
            {
                "endpoints": [
                    {**PROFILES, "params": [{"name": "id", "in": "path", "required": False}]}
                ]
            },
            "must be required",
        ),
        ({"pagination": {"next": "links..next", "link": "absolute"}}, "dotted path"),
        ({"pagination": {"next": "links.next", "link": "sideways"}}, "pagination.link"),
    ],
)
def test_bad_endpoints_stop_start_up(tmp_path: Path, top: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_app_file(app_file(tmp_path, OAUTH, **top))
    message = str(raised.value)
    assert "demo.yaml" in message
    assert says in message


def test_next_link_absolute_keeps_only_path_and_query() -> None:
    body = {"links": {"next": "https://a.klaviyo.com/api/profiles/?page%5Bcursor%5D=bmV4dA"}}
    link = next_link(body, "links.next")
    assert link is not None
    assert (
        gateway_path("klaviyo", link, "absolute", "https://a.klaviyo.com")
        == "/klaviyo/api/profiles/?page%5Bcursor%5D=bmV4dA"
    )
    # Another host in the link cannot steer the call: the gateway keeps its own upstream.
    assert gateway_path(
        "klaviyo", "https://evil.example/api/x?y=1", "absolute", "https://a.klaviyo.com"
    ) == ("/klaviyo/api/x?y=1")


def test_next_link_relative_resolves_against_the_base_root() -> None:
    body = {"_links": {"next": {"href": "/v3/contacts?cursor=abc&limit=50"}}}
    link = next_link(body, "_links.next.href")
    assert link == "/v3/contacts?cursor=abc&limit=50"
    assert (
        gateway_path("constant-contact", link, "relative", "https://api.cc.email")
        == "/constant-contact/v3/contacts?cursor=abc&limit=50"
    )
    # A base URL with a path prefix: the link's copy of the prefix is not doubled.
    assert gateway_path("x", "/v2/items?c=1", "relative", "https://h.example/v2") == "/x/items?c=1"


def test_the_last_page_has_no_next_link() -> None:
    assert next_link({"links": {"next": None}}, "links.next") is None
    assert next_link({"_links": {}}, "_links.next.href") is None
    assert next_link([1, 2], "links.next") is None


def test_configuring_an_app_keeps_its_endpoint_parameters(tmp_path: Path) -> None:
    # Overrides re-validate the entry: its parameters must survive the round trip (`in`).
    listing = {**PROFILES, "params": [*PROFILES["params"], {"name": "page[size]", "in": "query"}]}
    spec = load_app_file(app_file(tmp_path, OAUTH, endpoints=[listing]))
    configured = configure_app(spec, AppOverrides(base_url="http://127.0.0.1:9"))
    params = configured.spec.endpoints[0].params
    assert [(p.location, p.name) for p in params] == [("path", "id"), ("query", "page[size]")]
    assert configured.base_url == "http://127.0.0.1:9"
