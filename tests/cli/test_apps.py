"""`keygate apps list|show|configure`: the catalog as configured; the client secret encrypted."""

from __future__ import annotations

import orjson

from tests.cli.conftest import Cli, assert_one_line_error
from tests.support.stored import decryptable

SECRET = "cs-cli-client-secret-7f3a91"


def test_list_and_show(installed: tuple[Cli, str]) -> None:
    cli, _ = installed
    listed, shown, unknown = cli.parallel(
        ("apps", "list", "--json"), ("apps", "show", "constant-contact"), ("apps", "show", "nope")
    )
    apps = {a["app"]: a for a in orjson.loads(listed.stdout)["apps"]}
    assert {"klaviyo", "constant-contact"} <= set(apps)
    assert apps["klaviyo"]["methods"] == ["OAUTH2", "API_KEY"]
    assert apps["klaviyo"]["default_headers"] == {"revision": "2026-01-15"}
    assert "display_name: Constant Contact" in shown.stdout
    assert "unknown app 'nope'" in assert_one_line_error(unknown)


def test_configure_stores_the_secret_encrypted_and_refuses_bad_urls(
    installed: tuple[Cli, str],
) -> None:
    cli, _ = installed
    view = cli.json(
        "apps",
        "configure",
        "klaviyo",
        "--client-id",
        "cid-123",
        "--client-secret",
        "-",
        "--base-url",
        "http://127.0.0.1:9/",
        "--scopes",
        "accounts:read lists:read",
        input=SECRET + "\n",
    )
    assert view["oauth"]["client_id"] == "cid-123"
    assert view["oauth"]["client_secret_set"] is True
    assert view["oauth"]["scopes"] == ["accounts:read", "lists:read"]
    assert view["base_url"].startswith("http://127.0.0.1:9")
    assert SECRET not in str(view)
    stored = cli.stored()
    # The secret is stored, encrypted and bound to the app (so the grep below can fail) ...
    assert set(decryptable(stored, cli.cipher(), "app:klaviyo")) == {SECRET.encode()}
    # ... and nowhere in plain text.
    assert SECRET.encode() not in stored

    line = cli.fails("apps", "configure", "constant-contact", "--token-url", "not a url")
    assert "constant-contact" in line
    assert "token_url" in line
    listed = cli.ok("apps", "list", "--json")
    assert SECRET not in listed
    apps = {a["app"]: a for a in orjson.loads(listed)["apps"]}
    assert apps["constant-contact"]["oauth"]["token_url"].startswith("https://")
    assert apps["klaviyo"]["oauth"]["client_secret_set"] is True
