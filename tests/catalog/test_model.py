"""Catalog files: what `inject` may say, and the start-up errors that name the file and field."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from keygate.catalog.auth import render_auth
from keygate.catalog.loader import load_app_file
from keygate.catalog.model import ApiKeyMethod, OAuth2Method
from keygate.crypto import generate_key
from keygate.errors import ConfigurationError
from keygate.runtime import Runtime
from keygate.settings import Settings


def app_file(directory: Path, method: dict[str, Any], **top: Any) -> Path:
    """A catalog file `demo.yaml` with one connection method."""
    spec = {
        "name": "demo",
        "display_name": "Demo",
        "docs_url": "https://example.invalid/docs",
        "base_url": "https://api.example.invalid",
        "methods": [method],
        **top,
    }
    path = directory / "demo.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


OAUTH = {
    "type": "OAUTH2",
    "authorize_url": "https://example.invalid/authorize",
    "token_url": "https://example.invalid/token",
}


def api_key(inject: Any, **more: Any) -> dict[str, Any]:
    """An API_KEY method with one field, `api_key`."""
    return {
        "type": "API_KEY",
        "fields": [{"name": "api_key", "label": "Key"}],
        "inject": inject,
        **more,
    }


@pytest.mark.parametrize(
    ("method", "named"),
    [
        ({**OAUTH, "inject": {"template": "Bearer {acess_token}"}}, "{acess_token}"),
        (api_key({"header": "X-Api-Key", "template": "{apikey}"}), "{apikey}"),
        (
            api_key([{"query": "k", "template": "{api_key}"}, {"query": "j", "template": "{key}"}]),
            "inject[1].template",
        ),
        (
            api_key({"basic": {"username": "{user}", "password": "{api_key}"}}),
            "inject[0].basic.username",
        ),
    ],
)
def test_a_placeholder_naming_no_field_stops_start_up(
    tmp_path: Path, method: dict[str, Any], named: str
) -> None:
    path = app_file(tmp_path, method)
    with pytest.raises(ConfigurationError) as caught:
        load_app_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert named in message
    assert "names no field" in message


def test_start_up_refuses_a_catalog_directory_with_a_bad_placeholder(tmp_path: Path) -> None:
    app_file(tmp_path, {**OAUTH, "inject": {"template": "Bearer {acess_token}"}})
    settings = Settings(
        data_dir=tmp_path,
        encryption_key=SecretStr(generate_key()),
        catalog_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
    )
    with pytest.raises(ConfigurationError, match=r"demo\.yaml.*acess_token"):
        asyncio.run(Runtime.open(settings))


@pytest.mark.parametrize(
    ("inject", "says"),
    [
        (
            {"header": "X-Key", "query": "key", "template": "{api_key}"},
            "one of header, query or basic",
        ),
        ({"header": "X-Key"}, "template is required"),
        ({"query": "key", "template": "static"}, "must reference a credential field"),
        ({"basic": {"username": "{api_key}"}, "template": "{api_key}"}, "not template"),
        ({"basic": {"username": "a:{api_key}"}}, "may not contain ':'"),
        ({"header": "Host", "template": "{api_key}"}, "Keygate sets or drops itself"),
        ({"header": "Keygate-Thing", "template": "{api_key}"}, "Keygate sets or drops itself"),
        ({"header": "Bad Name", "template": "{api_key}"}, "not a valid HTTP header name"),
        ({"template": "Key {api_key.real}"}, "plain field names"),
        ({"template": "Key {api_key!r}"}, "plain field names"),
        ({"template": "Key {api_key"}, "expected '}'"),
        (
            [
                {"header": "X-Key", "template": "{api_key}"},
                {"header": "x-key", "template": "{api_key}"},
            ],
            "header x-key is injected twice",
        ),
        (
            [{"template": "Key {api_key}"}, {"basic": {"username": "{api_key}"}}],
            "header authorization is injected twice",
        ),
        ([], "at least one entry"),
    ],
)
def test_bad_injections_stop_start_up(tmp_path: Path, inject: Any, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_app_file(app_file(tmp_path, api_key(inject)))
    assert says in str(caught.value)


def test_a_default_header_may_not_be_an_injected_one(tmp_path: Path) -> None:
    method = api_key({"header": "X-Key", "template": "{api_key}"})
    with pytest.raises(ConfigurationError, match="default_headers: X-Key is injected"):
        load_app_file(app_file(tmp_path, method, default_headers={"x-key": "v"}))
    verify = {"path": "/me", "headers": {"X-KEY": "v"}}
    with pytest.raises(ConfigurationError, match=r"verify\.headers: X-KEY is the injected header"):
        load_app_file(
            app_file(tmp_path, api_key({"header": "X-Key", "template": "{api_key}"}, verify=verify))
        )


def test_defaults_oauth_bearer_and_basic_from_two_fields() -> None:
    oauth = OAuth2Method.model_validate(OAUTH)
    assert render_auth(oauth, {"access_token": "at"}).headers == (("Authorization", "Bearer at"),)
    basic = ApiKeyMethod.model_validate(
        {"type": "BASIC", "fields": [{"name": "user", "label": "U"}, {"name": "pw", "label": "P"}]}
    )
    auth = render_auth(basic, {"user": "u", "pw": "p"})
    assert auth.headers == (("Authorization", "Basic dTpw"),)
    assert "dTpw" not in repr(auth)
