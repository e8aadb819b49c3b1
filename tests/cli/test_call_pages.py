"""`keygate call --all / --items / -i` against Keygate and both sandboxes, over real HTTP.

Klaviyo's next links are absolute JSON:API URLs (`links.next`, `page[cursor]`), Constant
Contact's are relative (`_links.next.href`); the CLI learns which from `GET /apps/{app}`. The
sandboxes are shared by the session, so every check compares with what the same sandbox lists
in one big page, not with a fixed count.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from keygate.cli.main import app
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate

JSONAPI = {"Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}


@pytest.fixture(scope="module")
def tenant(sandboxed: SandboxedKeygate) -> Iterator[Tenant]:
    """A workspace with an ACTIVE connection to each sandbox, and a few records in each."""
    made = sandboxed.tenant()
    sandboxed.oauth_connection(made, "klaviyo")
    sandboxed.oauth_connection(made, "constant-contact")
    for _ in range(5):
        email = f"pages-{uuid.uuid4().hex[:8]}@example.com"
        profile = {"data": {"type": "profile", "attributes": {"email": email}}}
        created = made.http.post("/klaviyo/api/profiles", json=profile, headers=JSONAPI)
        assert created.status_code == 201, created.text
        contact = {"email_address": {"address": email}, "create_source": "Account"}
        created = made.http.post("/constant-contact/v3/contacts", json=contact)
        assert created.status_code == 201, created.text
    yield made
    made.close()


def keygate(sandboxed: SandboxedKeygate, tenant: Tenant, *args: str) -> Result:
    """`keygate ARGS` in-process, pointed at the sandboxed Keygate with the tenant's key."""
    env = {"KEYGATE_URL": sandboxed.keygate.url, "KEYGATE_API_KEY": tenant.key}
    return CliRunner().invoke(app, list(args), env=env)


def lines(result: Result) -> list[Any]:
    """stdout as JSON Lines."""
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def klaviyo_ids(tenant: Tenant) -> list[str]:
    """Every profile id, in the sandbox's order, from one page."""
    page = tenant.http.get("/klaviyo/api/profiles", params={"page[size]": "100"}).json()
    assert "next" not in page["links"]
    return [p["id"] for p in page["data"]]


def cc_ids(tenant: Tenant) -> list[str]:
    """Every contact id, in the sandbox's order, from one page."""
    page = tenant.http.get("/constant-contact/v3/contacts", params={"limit": "500"}).json()
    assert "_links" not in page
    return [c["contact_id"] for c in page["contacts"]]


def test_klaviyo_all_prints_one_document_per_page_following_absolute_links(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    expected = klaviyo_ids(tenant)
    result = keygate(
        sandboxed, tenant, "call", "klaviyo", "GET", "/api/profiles?page[size]=2", "--all"
    )
    pages = lines(result)
    assert len(pages) == math.ceil(len(expected) / 2) >= 3
    assert [p["id"] for page in pages for p in page["data"]] == expected
    assert all("next" in page["links"] for page in pages[:-1])
    assert "next" not in pages[-1]["links"]
    progress = result.stderr.splitlines()
    assert progress[0] == "klaviyo: page 1"
    assert progress[-1] == f"klaviyo: {len(pages)} page(s)"


def test_klaviyo_items_prints_one_profile_per_line(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    expected = klaviyo_ids(tenant)
    result = keygate(
        sandboxed,
        tenant,
        "call",
        "klaviyo",
        "GET",
        "/api/profiles?page[size]=3",
        "--all",
        "--items",
    )
    profiles = lines(result)
    assert [p["id"] for p in profiles] == expected
    assert all(p["type"] == "profile" for p in profiles)
    assert result.stderr.splitlines()[-1].endswith(f", {len(expected)} items")


def test_constant_contact_all_follows_relative_links(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    expected = cc_ids(tenant)
    pages = lines(
        keygate(
            sandboxed, tenant, "call", "constant-contact", "GET", "/v3/contacts?limit=2", "--all"
        )
    )
    assert len(pages) == math.ceil(len(expected) / 2) >= 3
    assert [c["contact_id"] for page in pages for c in page["contacts"]] == expected
    items = lines(
        keygate(
            sandboxed,
            tenant,
            "call",
            "constant-contact",
            "GET",
            "/v3/contacts?limit=2",
            "--all",
            "--items-path",
            "contacts",
        )
    )
    assert [c["contact_id"] for c in items] == expected


def test_max_pages_stops_and_says_how_to_go_on(sandboxed: SandboxedKeygate, tenant: Tenant) -> None:
    expected = cc_ids(tenant)
    result = keygate(
        sandboxed,
        tenant,
        "call",
        "constant-contact",
        "GET",
        "/v3/contacts?limit=1",
        "--all",
        "--max-pages",
        "2",
    )
    pages = lines(result)
    assert [c["contact_id"] for page in pages for c in page["contacts"]] == expected[:2]
    last = result.stderr.splitlines()[-1]
    assert "stopped after 2 page(s)" in last
    # The command it suggests fetches the rest.
    rest = last.split("more remain: keygate ", 1)[1].split()
    assert rest[:3] == ["call", "constant-contact", "GET"]
    more = lines(
        keygate(
            sandboxed, tenant, *rest[:3], rest[3].strip("'"), "--all", "--items-path", "contacts"
        )
    )
    assert [c["contact_id"] for c in more] == expected[2:]


def test_include_prints_status_line_and_headers_on_stdout_before_the_body(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    result = keygate(sandboxed, tenant, "call", "klaviyo", "GET", "/api/accounts", "-i")
    assert result.exit_code == 0, result.stderr
    head, _, body = result.stdout.partition("\n\n")
    status, *headers = head.splitlines()
    assert status == "HTTP/1.1 200 OK"
    names = {line.split(":", 1)[0].lower() for line in headers}
    assert {"content-type", "x-request-id", "keygate-connection"} <= names
    assert json.loads(body)["data"][0]["type"] == "account"
    assert result.stderr == ""
    # A Keygate error too: its status line, its Keygate-Error header, its JSON; exit 1.
    refused = keygate(
        sandboxed,
        tenant,
        "call",
        "klaviyo",
        "GET",
        "/api/accounts",
        "-i",
        "--connection",
        str(uuid.uuid4()),
    )
    assert refused.exit_code == 1
    assert refused.stdout.startswith("HTTP/1.1 404 Not Found\n")
    assert "keygate-error: connection_not_found\n" in refused.stdout.lower()


def test_include_with_all_puts_each_pages_head_before_it(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    expected = klaviyo_ids(tenant)
    result = keygate(
        sandboxed, tenant, "call", "klaviyo", "GET", "/api/profiles?page[size]=2", "--all", "-i"
    )
    assert result.exit_code == 0, result.stderr
    blocks = result.stdout.split("HTTP/1.1 200 OK\n")[1:]
    assert len(blocks) == math.ceil(len(expected) / 2)
    for block in blocks:
        head, _, body = block.partition("\n\n")
        assert "keygate-connection:" in head.lower()
        assert json.loads(body)["data"]


def test_paging_errors_are_one_line(sandboxed: SandboxedKeygate, tenant: Tenant) -> None:
    post = keygate(sandboxed, tenant, "call", "klaviyo", "POST", "/api/profiles", "--all")
    assert post.exit_code == 1
    assert post.stderr.strip() == (
        "error: --all and --items read list pages with GET and no --data, not POST"
    )
    for wrong_use in (
        ("POST", "/api/profiles", "--items-path", "data"),
        ("GET", "/api/profiles", "--all", "--data", "{}"),
    ):
        refused = keygate(sandboxed, tenant, "call", "klaviyo", *wrong_use)
        assert refused.exit_code == 1
        assert "--all and --items read list pages with GET" in refused.stderr
    unknown = keygate(sandboxed, tenant, "call", "nope", "GET", "/x", "--all")
    assert unknown.exit_code == 1
    (line,) = unknown.stderr.strip().splitlines()
    assert line.startswith("error: cannot read the catalog entry of 'nope'")
    assert "(unknown_app)" in line
    wrong = keygate(
        sandboxed, tenant, "call", "klaviyo", "GET", "/api/profiles", "--items-path", "nothing.here"
    )
    assert wrong.exit_code == 1
    assert "no list at 'nothing.here'" in wrong.stderr


def test_where_the_client_commands_look(sandboxed: SandboxedKeygate, tenant: Tenant) -> None:
    """KEYGATE_URL wins over KEYGATE_HOST/PORT; bad values are named in one line."""
    runner = CliRunner()
    args = ["call", "klaviyo", "GET", "/api/accounts"]
    both = {
        "KEYGATE_URL": sandboxed.keygate.url,
        "KEYGATE_PORT": "1",
        "KEYGATE_API_KEY": tenant.key,
    }
    assert runner.invoke(app, args, env=both).exit_code == 0
    for env, named in (
        ({"KEYGATE_URL": "", "KEYGATE_PORT": "eighty"}, "invalid settings: KEYGATE_PORT: 'eighty'"),
        (
            {"KEYGATE_URL": "ftp://example.com"},
            "invalid settings: KEYGATE_URL: 'ftp://example.com'",
        ),
        ({"KEYGATE_URL": "http://127.0.0.1:1"}, "could not reach Keygate at http://127.0.0.1:1"),
    ):
        done = runner.invoke(app, args, env={"KEYGATE_API_KEY": tenant.key, **env})
        assert done.exit_code == 1
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"error: {named}"), line
    unreachable = runner.invoke(
        app, args, env={"KEYGATE_API_KEY": tenant.key, "KEYGATE_URL": "http://127.0.0.1:1"}
    )
    assert "check KEYGATE_URL, or pass --url" in unreachable.stderr
    assert tenant.key not in unreachable.stderr
