"""`keygate apps list|show|configure`: the catalog as configured; the client secret encrypted."""

from __future__ import annotations

import orjson

from tests.cli.conftest import Cli, assert_one_line_error
from tests.support.stored import decryptable

SECRET = "cs-cli-client-secret-7f3a91"


def test_list_and_show(installed: tuple[Cli, str]) -> None:
    cli, _ = installed
    # The console script once (the smoke test of the group), the rest in-process.
    listed = cli.spawn("apps", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    shown, unknown, table = cli.parallel(
        ("apps", "show", "constant-contact"), ("apps", "show", "nope"), ("apps", "list")
    )
    apps = {a["app"]: a for a in orjson.loads(listed.stdout)["apps"]}
    assert {"klaviyo", "constant-contact"} <= set(apps)
    assert apps["klaviyo"]["methods"] == ["OAUTH2", "API_KEY"]
    assert apps["klaviyo"]["default_headers"] == {"revision": "2026-01-15"}
    assert "display_name: Constant Contact" in shown.stdout
    assert "unknown app 'nope'" in assert_one_line_error(unknown)
    # Names and base URLs are whole in the table, at 80 columns.
    assert "constant-contact" in table.stdout
    assert "https://api.cc.email" in table.stdout


def test_show_prints_plain_values_not_python_reprs(installed: tuple[Cli, str]) -> None:
    cli, _ = installed
    klaviyo, cc = (cli.ok("apps", "show", app) for app in ("klaviyo", "constant-contact"))
    assert "methods: OAUTH2, API_KEY\n" in klaviyo
    # Nested mappings are indented beneath their name.
    assert "default_headers:\n  revision: 2026-01-15\n" in klaviyo
    assert "\noauth:\n  authorize_url: https://" in klaviyo
    assert "  client_secret_set: no\n" in klaviyo
    # A missing value reads <none> (Constant Contact has no revoke endpoint).
    assert "  revoke_url: <none>\n" in cc
    assert "default_headers: <none>\n" in cc
    for shown in (klaviyo, cc):
        for python in ("None", "True", "False", "{'", "['", "('"):
            assert python not in shown


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
