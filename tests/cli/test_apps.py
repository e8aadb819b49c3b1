"""`keygate apps list|show|configure`: the catalog as configured; the client secret encrypted."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from jsonschema import Draft202012Validator

from keygate.catalog.loader import BUILTIN_DIR
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
    # Names and categories are whole in the table, which fits 80 columns (base URLs are in
    # `apps show` and --json).
    assert "constant-contact" in table.stdout
    assert "project-management" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    assert "https://api.cc.email" in shown.stdout


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


def test_list_searches_and_filters_like_get_apps(installed: tuple[Cli, str]) -> None:
    cli, _ = installed
    found = cli.json("apps", "list", "--q", "GOOGLE")["apps"]
    assert [a["app"] for a in found] == ["google-calendar", "google-drive", "google-sheets"]
    crm = cli.json("apps", "list", "--category", "crm")["apps"]
    assert [(a["app"], a["category"]) for a in crm] == [
        ("hubspot", "crm"),
        ("pipedrive", "crm"),
        ("salesforce", "crm"),
    ]
    assert all(a["oauth_client_configured"] is False for a in crm)
    table = cli.ok("apps", "list", "--q", "a", "--category", "project-management")
    assert "jira" in table
    assert "Apps (4)" in table  # asana, jira, linear, trello
    assert "unknown" not in cli.ok("apps", "list", "--q", "no-such-app")
    refused = cli.run("apps", "list", "--category", "games")
    assert refused.returncode != 0
    assert "games" in refused.stderr


def catalog_file(directory: Path, name: str, **changes: object) -> Path:
    """A copy of the built-in stripe.yaml saved as NAME.yaml, with top-level changes."""
    data = yaml.safe_load((BUILTIN_DIR / "stripe.yaml").read_text())
    data.update({"name": name, **changes})
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_names_the_file_and_field(installed: tuple[Cli, str], tmp_path: Path) -> None:
    cli, _ = installed
    good = catalog_file(tmp_path, "acme-pay", display_name="Acme Pay")
    bad_category = catalog_file(tmp_path, "acme-bad", category="games")
    bad_param = tmp_path / "acme-param.yaml"
    data = yaml.safe_load(good.read_text())
    data["name"] = "acme-param"
    data["base_url"] = "https://{shop}.acme.invalid"
    bad_param.write_text(yaml.safe_dump(data))

    ok = cli.run("apps", "validate", str(good), str(BUILTIN_DIR / "klaviyo.yaml"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [f"{good}: ok", f"{BUILTIN_DIR / 'klaviyo.yaml'}: ok"]

    done = cli.run("apps", "validate", str(good), str(bad_category), str(bad_param), "nope.yaml")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [f"{good}: ok"]
    errors = done.stderr.splitlines()
    assert len(errors) == 3, done.stderr
    assert str(bad_category) in errors[0]
    assert "category" in errors[0]
    assert str(bad_param) in errors[1]
    assert "base_url" in errors[1]
    assert "{shop}" in errors[1]
    assert "nope.yaml" in errors[2]
    # A reserved name is refused as at start-up.
    reserved = cli.run("apps", "validate", str(catalog_file(tmp_path, "skill")))
    assert reserved.returncode == 1
    assert "reserved" in reserved.stderr


def test_schema_accepts_every_built_in_file_and_refuses_bad_ones(
    installed: tuple[Cli, str],
) -> None:
    cli, _ = installed
    schema = orjson.loads(cli.ok("apps", "schema"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    # The built-in files, and the test catalog's (one file per model feature).
    test_catalog = Path(__file__).parent.parent / "support" / "catalog"
    for path in [*sorted(BUILTIN_DIR.glob("*.yaml")), *sorted(test_catalog.glob("*.yaml"))]:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, f"{path.name}: {errors}"
    stripe = yaml.safe_load((BUILTIN_DIR / "stripe.yaml").read_text())
    assert not validator.is_valid({**stripe, "category": "games"})
    assert not validator.is_valid({**stripe, "colour": "blue"})
    assert "category" in schema["properties"]


def test_an_operator_directory_adds_apps_and_replaces_built_in_ones(
    installed: tuple[Cli, str], tmp_path: Path
) -> None:
    cli, _ = installed
    catalog_file(tmp_path, "acme-pay", display_name="Acme Pay")
    catalog_file(tmp_path, "stripe", display_name="Stripe (our copy)", category="commerce")
    operator = Cli(cli.data_dir, cli.database_url, env={"KEYGATE_CATALOG_DIR": str(tmp_path)})
    apps = {a["app"]: a for a in operator.json("apps", "list")["apps"]}
    assert apps["acme-pay"]["display_name"] == "Acme Pay"
    assert apps["stripe"]["display_name"] == "Stripe (our copy)"
    assert apps["stripe"]["category"] == "commerce"
    assert "klaviyo" in apps
    # The same validation as the built-in files: a bad operator file stops the command.
    catalog_file(tmp_path, "acme-bad", category="games")
    line = operator.fails("apps", "list")
    assert "acme-bad.yaml" in line
    assert "category" in line
