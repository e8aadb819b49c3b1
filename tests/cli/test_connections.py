"""`keygate connections list|create|show|delete|import`: the control plane from the shell."""

from __future__ import annotations

import orjson

from tests.cli.conftest import Cli, assert_one_line_error
from tests.support.stored import decryptable

ACCESS = "cc-access-cli-4b1d2e"
REFRESH = "cc-refresh-cli-93ac07"


def test_import_show_list_create_delete(installed: tuple[Cli, str]) -> None:
    cli, _ = installed
    imported = cli.json(
        "connections",
        "import",
        "constant-contact",
        "--access-token",
        "-",
        "--refresh-token",
        REFRESH,
        "--expires-in",
        "3600",
        input=ACCESS + "\n",
    )["connection"]
    assert imported["status"] == "ACTIVE"
    assert imported["method"] == "OAUTH2"
    assert imported["app"] == "constant-contact"
    conn_id = imported["connection_id"]
    assert ACCESS not in str(imported)
    assert REFRESH not in str(imported)

    stored = cli.stored()
    plain = decryptable(stored, cli.cipher(), conn_id)[-1]
    assert orjson.loads(plain)["access_token"] == ACCESS  # stored, so the greps below can fail
    assert orjson.loads(plain)["refresh_token"] == REFRESH
    assert ACCESS.encode() not in stored
    assert REFRESH.encode() not in stored

    # The console script once (the smoke test of the group), the rest in-process.
    shown = cli.spawn("connections", "show", conn_id)
    table, created = cli.parallel(
        ("connections", "list"),
        ("connections", "create", "klaviyo", "--method", "API_KEY", "--json"),
    )
    assert f"connection_id: {conn_id}\n" in shown.stdout
    assert "status: ACTIVE\n" in shown.stdout
    assert "metadata: <none>\n" in shown.stdout  # plain values, not Python reprs ({}, None)
    assert "{}" not in shown.stdout
    assert conn_id in table.stdout  # whole, at 80 columns, so a person can copy it
    assert "constant" in table.stdout  # the app column may wrap at 80 columns; ids never do
    pending = orjson.loads(created.stdout)["connection"]
    assert pending["status"] == "PENDING"
    assert pending["method"] == "API_KEY"
    assert "/connect?session_token=" in pending["url"]
    for output in (shown, table, created):
        assert ACCESS not in output.stdout + output.stderr

    listed = cli.json("connections", "list", "--app", "klaviyo", "--status", "PENDING")
    assert [c["connection_id"] for c in listed["connections"]] == [pending["connection_id"]]

    deleted = cli.json("connections", "delete", conn_id)["connection"]
    assert deleted["connection_id"] == conn_id
    assert deleted["status"] == "DELETED"
    gone, bad_status = cli.parallel(
        ("connections", "show", conn_id), ("connections", "list", "--status", "GONE")
    )
    assert conn_id in assert_one_line_error(gone)
    assert "--status" in assert_one_line_error(bad_status)


def test_import_refuses_an_app_without_oauth(installed: tuple[Cli, str]) -> None:
    cli, _ = installed
    line = cli.fails("connections", "import", "nope", "--access-token", "x")
    assert "'nope'" in line


def test_create_takes_params_and_their_defaults(installed: tuple[Cli, str]) -> None:
    cli, _ = installed
    zendesk = cli.json("connections", "create", "zendesk", "--param", "subdomain=acme")
    assert zendesk["connection"]["params"] == {"subdomain": "acme"}
    assert zendesk["connection"]["status"] == "PENDING"
    # Left out: the default (Microsoft's tenant is common); given: the value given.
    outlook = cli.json("connections", "create", "microsoft-outlook")
    assert outlook["connection"]["params"] == {"tenant": "common"}
    own = cli.json(
        "connections", "create", "microsoft-teams", "--param", "tenant=contoso.onmicrosoft.com"
    )
    assert own["connection"]["params"] == {"tenant": "contoso.onmicrosoft.com"}
    # The connection the control plane shows is the one created.
    shown = cli.json("connections", "show", zendesk["connection"]["connection_id"])
    assert shown["connection"]["params"] == {"subdomain": "acme"}

    bad = cli.fails("connections", "create", "zendesk", "--param", "subdomain=a/b")
    assert "params.subdomain" in bad
    unknown = cli.fails("connections", "create", "zendesk", "--param", "shop=acme")
    assert "params.shop" in unknown
    assert "no such parameter" in unknown
    shapeless = cli.fails("connections", "create", "zendesk", "--param", "acme")
    assert "NAME=VALUE" in shapeless
