"""Catalog files with connection parameters, captured values and token request details: what
they may say, and the start-up errors that name the file and the field."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from keygate.catalog.loader import AppOverrides, configure_app, load_app_file
from keygate.catalog.model import OAuth2Method
from keygate.crypto import generate_key
from keygate.errors import ConfigurationError
from keygate.runtime import Runtime
from keygate.settings import Settings

SUBDOMAIN = {"name": "subdomain", "label": "Subdomain", "pattern": "[a-z0-9-]+", "example": "acme"}
OAUTH: dict[str, Any] = {
    "type": "OAUTH2",
    "authorize_url": "https://{subdomain}.example.invalid/authorize",
    "token_url": "https://{subdomain}.example.invalid/token",
}
KEY: dict[str, Any] = {
    "type": "API_KEY",
    "fields": [{"name": "api_key", "label": "Key"}],
    "inject": {"header": "X-Key", "template": "{api_key}"},
}


def write(directory: Path, method: dict[str, Any], **top: Any) -> Path:
    """A catalog file `demo.yaml` with one method; `top` overrides or adds top-level keys."""
    spec = {
        "name": "demo",
        "display_name": "Demo",
        "docs_url": "https://example.invalid/docs",
        "base_url": "https://{subdomain}.example.invalid/api",
        "params": [SUBDOMAIN],
        "methods": [method],
        **top,
    }
    path = directory / "demo.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def capture(name: str, source: str, path: str, **more: Any) -> dict[str, Any]:
    """A capture whose pattern takes any word and whose example is `x1`."""
    return {"name": name, "from": source, "path": path, "pattern": "[a-z0-9]+", "example": "x1"}


def test_every_new_field_loads(tmp_path: Path) -> None:
    method = {
        **OAUTH,
        "token_url": "https://{subdomain}.example.invalid/token?realm={realm}",
        "revoke_url": "https://{subdomain}.example.invalid/revoke/{cloud}",
        "base_url": "https://api.example.invalid/{cloud}/{team}",
        "token_body": "json",
        "client_auth": "post",
        "token_params": {"audience": "{subdomain}"},
        "authorize_params": {"access_type": "offline", "site": "{subdomain}"},
        "expires_in_unit": "minutes",
        "default_expires_in": 3600,
        "refresh_token_rotates": True,
        "capture": [
            capture("team", "token", "team.id"),
            capture("realm", "callback", "realmId"),
            capture("cloud", "request", "0.id"),
        ],
        "capture_request": {"url": "https://api.example.invalid/resources?site={subdomain}"},
        "inject": [
            {"template": "Bearer {access_token}"},
            {"header": "X-Team", "template": "{team}"},
        ],
    }
    spec = load_app_file(write(tmp_path, method, default_headers={"X-Site": "{subdomain}"}))
    oauth = spec.methods[0]
    assert isinstance(oauth, OAuth2Method)
    assert oauth.captured_names("callback") == ["realm"]
    assert [p.name for p in spec.params_for(oauth)] == ["subdomain"]
    app = configure_app(spec, AppOverrides())
    values = {"subdomain": "acme", "team": "t1", "realm": "r1", "cloud": "c1"}
    assert app.connection_base_url(oauth, values) == "https://api.example.invalid/c1/t1"
    assert app.connection_headers(values)[0][1:] == ("X-Site", "acme")
    sandboxed = configure_app(spec, AppOverrides(sandbox_origin="http://127.0.0.1:9"))
    assert sandboxed.url(oauth.authorize_url, values) == (
        "http://127.0.0.1:9/acme.example.invalid/authorize"
    )


BAD: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    # A placeholder that names no parameter, field or captured value, field by field.
    ({**OAUTH}, {"base_url": "https://{shop}.example.invalid"}, "base_url: placeholder {shop}"),
    ({**OAUTH, "authorize_url": "https://{shop}.x.invalid/a"}, {}, "authorize_url: placeholder"),
    (
        {
            **OAUTH,
            "capture": [capture("team", "token", "team.id")],
            "token_url": "https://{team}.x.invalid/t",
        },
        {},
        "token_url: placeholder {team} names no",
    ),
    ({**OAUTH, "revoke_url": "https://x.invalid/{tenant}"}, {}, "revoke_url: placeholder {tenant}"),
    ({**OAUTH, "token_params": {"a": "{region}"}}, {}, "token_params.a: placeholder {region}"),
    ({**OAUTH, "authorize_params": {"a": "{x}"}}, {}, "authorize_params.a: placeholder {x}"),
    ({**OAUTH}, {"default_headers": {"X-Site": "{site}"}}, "default_headers.X-Site: placeholder"),
    ({**OAUTH, "inject": {"template": "Bearer {tenant}"}}, {}, "inject[0].template: placeholder"),
    ({**KEY, "base_url": "https://{region}.x.invalid"}, {}, "base_url: placeholder {region}"),
    (
        {
            **OAUTH,
            "capture": [capture("cloud", "request", "0.id")],
            "capture_request": {"url": "https://x.invalid/r", "headers": {"A": "{cloud}"}},
        },
        {},
        "capture_request.headers.A: placeholder {cloud}",
    ),
    # Captures with no source, or a malformed one.
    (
        {**OAUTH, "capture": [capture("cloud", "request", "0.id")]},
        {},
        "needs the method's capture_request",
    ),
    ({**OAUTH, "capture": [capture("cloud", "body", "0.id")]}, {}, "capture.0.from"),
    (
        {**OAUTH, "capture": [{"name": "c", "path": "a", "pattern": "a", "example": "a"}]},
        {},
        "capture.0.from",
    ),
    ({**OAUTH, "capture": [capture("c", "token", "a..b")]}, {}, "capture.0.path"),
    ({**OAUTH, "capture": [capture("c", "callback", "a.b")]}, {}, "one query parameter name"),
    ({**OAUTH, "capture": [{**capture("c", "token", "a"), "example": "X!"}]}, {}, "does not match"),
    (
        {**OAUTH, "capture_request": {"url": "https://x.invalid/r"}},
        {},
        "no capture says from: request",
    ),
    # Parameters.
    ({**OAUTH}, {"params": [{**SUBDOMAIN, "example": "ac.me"}]}, "does not match pattern"),
    ({**OAUTH}, {"params": [{**SUBDOMAIN, "pattern": ".+", "example": "a/b"}]}, "letters, digits"),
    ({**OAUTH}, {"params": [{**SUBDOMAIN, "pattern": "[a-"}]}, "is not a regular expression"),
    (
        {**OAUTH},
        {"params": [{**SUBDOMAIN, "default": "ac.me"}]},
        "params.0: Value error, default 'ac.me' does not match pattern",
    ),
    (
        {**OAUTH},
        {"params": [{**SUBDOMAIN, "pattern": ".+", "default": "a/b"}]},
        "default 'a/b': a parameter is letters, digits",
    ),
    (
        {**OAUTH},
        {"params": [{"name": "subdomain", "label": "S", "example": "a"}]},
        "params.0.pattern",
    ),
    ({**OAUTH}, {"params": [{**SUBDOMAIN, "name": "sub-domain"}]}, "params.0.name"),
    ({**OAUTH}, {"params": [SUBDOMAIN, SUBDOMAIN]}, "subdomain is declared twice"),
    (
        {
            **KEY,
            "fields": [{"name": "subdomain", "label": "S"}],
            "inject": {"template": "{subdomain}"},
        },
        {},
        "declared twice",
    ),
    ({**OAUTH}, {"base_url": "https://{sub domain}.x.invalid"}, "plain field names"),
    ({**OAUTH}, {"base_url": "ftp://{subdomain}.x.invalid"}, "is not an http(s) URL"),
    # Token request details.
    ({**OAUTH, "token_body": "xml"}, {}, "token_body"),
    ({**OAUTH, "expires_in_unit": "hours"}, {}, "expires_in_unit"),
    ({**OAUTH, "expires": False, "default_expires_in": 60}, {}, "never expire have no lifetime"),
    ({**OAUTH, "refresh_tokens": False, "refresh_token_rotates": True}, {}, "issues no refresh"),
    ({**OAUTH, "default_expires_in": 0}, {}, "default_expires_in"),
]


@pytest.mark.parametrize(("method", "top", "named"), BAD)
def test_a_bad_file_stops_loading_naming_file_and_field(
    tmp_path: Path, method: dict[str, Any], top: dict[str, Any], named: str
) -> None:
    path = write(tmp_path, method, **top)
    with pytest.raises(ConfigurationError) as caught:
        load_app_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert named in message, message


def test_start_up_stops_on_a_placeholder_naming_no_parameter(tmp_path: Path) -> None:
    write(tmp_path, OAUTH, base_url="https://{shop}.example.invalid")
    settings = Settings(
        data_dir=tmp_path,
        encryption_key=SecretStr(generate_key()),
        catalog_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
    )
    with pytest.raises(ConfigurationError, match=r"demo\.yaml.*base_url: placeholder \{shop\}"):
        asyncio.run(Runtime.open(settings))


@pytest.mark.parametrize(
    "value", ["evil.example/x", "a@b", "a:1", "a?b", "a#b", "a b", "a\r\nb", ""]
)
def test_a_parameter_value_cannot_change_the_host(tmp_path: Path, value: str) -> None:
    spec = load_app_file(write(tmp_path, OAUTH, params=[{**SUBDOMAIN, "pattern": ".*"}]))
    app = configure_app(spec, AppOverrides())
    with pytest.raises(ValueError, match="subdomain"):
        app.connection_base_url(spec.methods[0], {"subdomain": value})
    assert spec.params[0].problem(value) is not None
