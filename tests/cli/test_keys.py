"""`keygate keys create|list|revoke`: a key is shown once and stored only as its hash."""

from __future__ import annotations

import orjson

from keygate.crypto import hash_api_key
from tests.cli.conftest import Cli, assert_one_line_error


def test_create_list_revoke(installed: tuple[Cli, str]) -> None:
    cli, first = installed
    created = cli.json("keys", "create", "--workspace", "team-b", "--name", "ci")
    key = created["key"]
    assert key.startswith("kg_")
    assert len(key) >= 40
    assert created["prefix"] == key[:11]
    assert created["workspace"] == "team-b"
    assert created["name"] == "ci"
    assert created["revoked_at"] is None

    stored = cli.stored()
    assert hash_api_key(key).encode() in stored  # the row is there, so the next check can fail
    assert key.encode() not in stored
    assert first.encode() not in stored

    table, unknown = cli.parallel(
        ("keys", "list", "--workspace", "team-b"), ("keys", "revoke", "kg_nope")
    )
    assert created["prefix"] in table.stdout
    assert "team-b" in table.stdout
    assert key not in table.stdout
    assert first not in table.stdout
    assert "kg_nope" in assert_one_line_error(unknown)

    assert cli.json("keys", "revoke", created["prefix"]) == {
        "prefix": created["prefix"],
        "revoked": True,
    }
    listed = cli.json("keys", "list", "--workspace", "team-b")["keys"]
    assert [k["prefix"] for k in listed] == [created["prefix"]]
    assert listed[0]["revoked_at"] is not None
    assert key not in str(listed)


def test_list_without_workspace_lists_the_first_workspace_only(installed: tuple[Cli, str]) -> None:
    """As every operator command: no --workspace means the first workspace, not all of them."""
    cli, first = installed
    other = cli.json("keys", "create", "--workspace", "team-c")["prefix"]
    # The console script once (the smoke test of the group), the rest in-process.
    listed = cli.spawn("keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    keys = orjson.loads(listed.stdout)["keys"]
    assert {k["workspace"] for k in keys} == {"default"}
    assert first[:11] in {k["prefix"] for k in keys}
    table = cli.ok("keys", "list")
    assert first[:11] in table
    assert other not in table
    assert "team-c" not in table
    assert [k["prefix"] for k in cli.json("keys", "list", "--workspace", "team-c")["keys"]] == [
        other
    ]
