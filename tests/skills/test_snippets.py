"""Every code block of every skill Keygate serves, in both languages, runs against it.

The skills are fetched over HTTP from a Keygate wired to the sandboxes, as an agent would fetch
them; each bash and python block runs in its own process exactly as printed, with only
`{connection_id}` replaced (by the tenant's ACTIVE connection, or by a throwaway one for the
block that deletes a connection). English runs with `KEYGATE_API_KEY` set, Chinese with only
`MATON_API_KEY`, so both variables the snippets honour are exercised. Each answer is checked,
and every runnable block must be run and checked: none is skipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate
from tests.support.snippets import fenced_blocks, run_code

KEY_VARIABLE = {"en": "KEYGATE_API_KEY", "zh": "MATON_API_KEY"}
RUNNABLE = {"bash", "python"}
SHOWN = {"text", "json"}  # fenced to be read, not run
SEEDED = 11  # more than one page of each listing example (page size 10)


def _seed(tenant: Tenant) -> None:
    """More items than one page holds, so the pagination examples follow a next link."""
    for i in range(SEEDED):
        made = tenant.http.post(
            "/klaviyo/api/profiles",
            json={"data": {"type": "profile", "attributes": {"email": f"p{i}@example.com"}}},
        )
        assert made.status_code == 201, made.text
        made = tenant.http.post(
            "/constant-contact/v3/contacts",
            json={"email_address": {"address": f"c{i}@example.com"}, "create_source": "Account"},
        )
        assert made.status_code == 201, made.text


Check = Callable[[Any], None]


def _total(tenant: Tenant, skill: str) -> int:
    """How many items the listing example should have found: all of them, in one big page."""
    if skill == "klaviyo":
        return len(tenant.http.get("/klaviyo/api/profiles?page[size]=100").json()["data"])
    return len(tenant.http.get("/constant-contact/v3/contacts?limit=500").json()["contacts"])


def _checks(
    base: str, active: str, apps: list[str], total: Callable[[], int]
) -> list[tuple[Callable[[str], bool], Check]]:
    """(which block, what its output must be), first match wins."""

    def listed(out: Any) -> None:
        assert [c["connection_id"] for c in out["connections"]] == [active]
        assert out["connections"][0]["status"] == "ACTIVE"

    def created(out: Any) -> None:
        assert out["status"] == "PENDING"
        assert out["url"].startswith(f"{base}/connect?session_token=")

    def waited(out: Any) -> None:
        assert out == {"connection_id": active, "status": "ACTIVE", "error": None}

    def deleted(out: Any) -> None:
        assert out["connection"]["status"] == "DELETED"

    def paged(out: Any) -> None:
        # Every item once, ten a page: the next links were followed with their cursors.
        expected = total()
        assert expected > SEEDED
        assert out == {"pages": -(-expected // 10), "items": expected}

    def failed(out: Any) -> None:
        assert out["status"] == 404
        assert out["keygate_error"] == "connection_not_found"
        assert out["body"]["error"]["code"] == "connection_not_found"

    def catalog(out: Any) -> None:
        assert sorted(a["app"] for a in out["apps"]) == apps

    def all_connections(out: Any) -> None:
        assert active in [c["connection_id"] for c in out["connections"]]

    def a_skill(out: Any) -> None:
        assert isinstance(out, str)
        assert out.startswith(f"---\nname: {apps[0]}\n")

    def created_upstream(out: Any) -> None:
        assert out["data"]["id"] if "data" in out else out["contact_id"]

    def read_upstream(out: Any) -> None:
        assert isinstance(out, dict)
        assert out

    return [
        (lambda c: "/connections?app=" in c, listed),
        (lambda c: 'method="POST"' in c and "/connections" in c, created),
        (lambda c: "time.monotonic()" in c, waited),
        (lambda c: 'method="DELETE"' in c, deleted),
        (lambda c: "gateway_path(link)" in c, paged),
        (lambda c: "00000000-0000-4000-8000-000000000000" in c, failed),
        (lambda c: '/apps"' in c, catalog),
        (
            lambda c: c.rstrip().endswith(
                '/connections" \\\n  -H "Authorization: Bearer ${KEYGATE_API_KEY:-$MATON_API_KEY}"'
            ),
            all_connections,
        ),
        (lambda c: "/skill" in c, a_skill),
        (lambda c: 'call("POST"' in c, created_upstream),
        (lambda c: "curl" in c, read_upstream),
    ]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_snippet_of_every_skill_runs(clean_sandboxes: SandboxedKeygate, lang: str) -> None:
    sandboxed = clean_sandboxes
    base = sandboxed.keygate.url
    tenant = sandboxed.tenant()
    apps = sorted(sandboxed.sandboxes)
    active = {app: sandboxed.oauth_connection(tenant, app) for app in apps}
    _seed(tenant)
    env = {KEY_VARIABLE[lang]: tenant.key}
    ran: dict[str, int] = {}
    for skill, path in [*((app, f"/apps/{app}/skill") for app in apps), ("keygate", "/apps/skill")]:
        answer = tenant.http.get(path, params={"lang": lang})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "text/markdown; charset=utf-8"
        blocks = fenced_blocks(answer.text)
        assert {info for info, _ in blocks} <= RUNNABLE | SHOWN, "a block fenced as neither"
        connection = active.get(skill, active[apps[0]])
        catalog = sorted(sandboxed.keygate.runtime.apps)
        checks = _checks(base, connection, catalog, lambda skill=skill: _total(tenant, skill))
        for info, code in blocks:
            if info == "json":  # shown, not run: still a JSON document an agent can copy
                json.loads(code)
            if info not in RUNNABLE:
                continue
            chosen = connection
            if 'method="DELETE"' in code:  # delete a throwaway, not the connection others use
                made = tenant.http.post("/connections", json={"app": apps[0]})
                chosen = made.json()["connection"]["connection_id"]
            done = run_code(info, code.replace("{connection_id}", chosen), env)
            assert done.returncode == 0, f"{skill} ({lang}) block failed:\n{code}\n{done.stderr}"
            check = next((c for match, c in checks if match(code)), None)
            assert check is not None, f"no check for this block of {skill}:\n{code}"
            try:
                output: Any = json.loads(done.stdout)
            except json.JSONDecodeError:
                output = done.stdout
            check(output)
            ran[skill] = ran.get(skill, 0) + 1
        assert ran.get(skill, 0) == sum(1 for info, _ in blocks if info in RUNNABLE)
    # The app skills show connections, calls, pagination and errors; the general one the catalog.
    assert all(ran[app] >= 9 for app in apps), ran
    assert ran["keygate"] >= 4, ran
    tenant.close()


def test_skills_answer_errors_as_json(sandboxed: SandboxedKeygate) -> None:
    tenant = sandboxed.tenant()
    bad_lang = tenant.http.get("/apps/klaviyo/skill", params={"lang": "fr"})
    assert bad_lang.status_code == 400
    assert bad_lang.headers["keygate-error"] == "invalid_request"
    assert "lang" in bad_lang.json()["error"]["message"]
    unknown = tenant.http.get("/apps/nope/skill")
    assert unknown.status_code == 404
    assert unknown.headers["keygate-error"] == "unknown_app"
    anonymous = httpx.get(f"{sandboxed.keygate.url}/apps/skill", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["keygate-error"] == "invalid_api_key"
    tenant.close()
