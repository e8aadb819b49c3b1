"""Every snippet of the two seed documents runs unchanged against Keygate.

The snippets are the seeds' Python, with the transcription's lost underscores restored
(`MATON_API_KEY`, `add_header`, `contact_lists`…) and the hosts replaced by Keygate's base URL —
exactly what the contract's compatibility rule allows. Each runs in its own interpreter.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate
from tests.support.snippets import run_code

PRELUDE = "import urllib.request, os, json\n"

LIST_ACTIVE = """
req = urllib.request.Request('https://ctrl.maton.ai/connections?app={app}&status=ACTIVE')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
CREATE = """
data = json.dumps({'app': '{app}'}).encode()
req = urllib.request.Request('https://ctrl.maton.ai/connections', data=data, method='POST')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
req.add_header('Content-Type', 'application/json')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
GET = """
req = urllib.request.Request('https://ctrl.maton.ai/connections/{connection_id}')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
DELETE = """
req = urllib.request.Request('https://ctrl.maton.ai/connections/{connection_id}', method='DELETE')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
CC_CONTACTS = """
req = urllib.request.Request('https://gateway.maton.ai/constant-contact/v3/contacts')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
req.add_header('Maton-Connection', '{connection_id}')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
KLAVIYO_PROFILES = """
req = urllib.request.Request('https://gateway.maton.ai/klaviyo/api/profiles')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
req.add_header('revision', '2026-01-15')
req.add_header('Maton-Connection', '{connection_id}')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
KLAVIYO_FIELDS = """
req = urllib.request.Request('https://gateway.maton.ai/klaviyo/api/profiles?fields[profile]=email,first_name,last_name&page[size]=10')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
req.add_header('revision', '2026-01-15')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
KLAVIYO_GET_PROFILE = """
req = urllib.request.Request('https://gateway.maton.ai/klaviyo/api/profiles/{profile_id}')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
req.add_header('revision', '2026-01-15')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
KLAVIYO_CREATE_PROFILE = """
data = json.dumps({'data': {'type': 'profile', 'attributes': {'email': 'newuser@example.com', 'first_name': 'John', 'last_name': 'Doe'}}}).encode()
req = urllib.request.Request('https://gateway.maton.ai/klaviyo/api/profiles', data=data, method='POST')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
req.add_header('Content-Type', 'application/json')
req.add_header('revision', '2026-01-15')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""
KLAVIYO_PATCH_PROFILE = """
data = json.dumps({'data': {'type': 'profile', 'id': '{profile_id}', 'attributes': {'first_name': 'Jane'}}}).encode()
req = urllib.request.Request('https://gateway.maton.ai/klaviyo/api/profiles/{profile_id}', data=data, method='PATCH')
req.add_header('Authorization', f'Bearer {os.environ["MATON_API_KEY"]}')
req.add_header('Content-Type', 'application/json')
req.add_header('revision', '2026-01-15')
print(json.dumps(json.load(urllib.request.urlopen(req)), indent=2))
"""


def run_snippet(snippet: str, base_url: str, key: str, **values: str) -> Any:
    """Run a seed snippet with the hosts replaced, MATON_API_KEY set; return its printed JSON."""
    code = snippet
    for name, value in values.items():
        code = code.replace("{" + name + "}", value)
    for host in ("https://gateway.maton.ai", "https://ctrl.maton.ai", "https://connect.maton.ai"):
        code = code.replace(host, base_url)
    done = run_code("python", PRELUDE + code, {"MATON_API_KEY": key})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_constant_contact_seed(clean_sandboxes: SandboxedKeygate) -> None:
    sandboxed = clean_sandboxes
    tenant: Tenant = sandboxed.tenant()
    base, key = sandboxed.keygate.url, tenant.key
    active_id = sandboxed.oauth_connection(tenant, "constant-contact")

    listed = run_snippet(LIST_ACTIVE, base, key, app="constant-contact")
    assert [c["connection_id"] for c in listed["connections"]] == [active_id]
    assert listed["connections"][0]["status"] == "ACTIVE"

    created = run_snippet(CREATE, base, key, app="constant-contact")["connection"]
    assert created["status"] == "PENDING"
    assert created["app"] == "constant-contact"
    assert created["url"].startswith(f"{base}/connect?session_token=")

    got = run_snippet(GET, base, key, connection_id=created["connection_id"])["connection"]
    assert got["connection_id"] == created["connection_id"]
    assert set(got) >= {"creation_time", "last_updated_time", "url", "metadata"}

    contacts = run_snippet(CC_CONTACTS, base, key, connection_id=active_id)
    assert "contacts" in contacts

    deleted = run_snippet(DELETE, base, key, connection_id=created["connection_id"])
    assert deleted["connection"]["status"] == "DELETED"
    tenant.close()


def test_klaviyo_seed(clean_sandboxes: SandboxedKeygate) -> None:
    sandboxed = clean_sandboxes
    tenant: Tenant = sandboxed.tenant()
    base, key = sandboxed.keygate.url, tenant.key
    active_id = sandboxed.oauth_connection(tenant, "klaviyo")

    listed = run_snippet(LIST_ACTIVE, base, key, app="klaviyo")
    assert [c["connection_id"] for c in listed["connections"]] == [active_id]
    created = run_snippet(CREATE, base, key, app="klaviyo")["connection"]
    assert created["status"] == "PENDING"
    assert (
        run_snippet(GET, base, key, connection_id=created["connection_id"])["connection"]["app"]
        == "klaviyo"
    )

    made = run_snippet(KLAVIYO_CREATE_PROFILE, base, key)
    profile_id = made["data"]["id"]
    assert made["data"]["attributes"]["email"] == "newuser@example.com"

    profiles = run_snippet(KLAVIYO_PROFILES, base, key, connection_id=active_id)
    assert [p["id"] for p in profiles["data"]] == [profile_id]
    sparse = run_snippet(KLAVIYO_FIELDS, base, key)
    assert set(sparse["data"][0]["attributes"]) == {"email", "first_name", "last_name"}
    one = run_snippet(KLAVIYO_GET_PROFILE, base, key, profile_id=profile_id)
    assert one["data"]["id"] == profile_id
    patched = run_snippet(KLAVIYO_PATCH_PROFILE, base, key, profile_id=profile_id)
    assert patched["data"]["attributes"]["first_name"] == "Jane"

    deleted = run_snippet(DELETE, base, key, connection_id=created["connection_id"])
    assert deleted["connection"]["status"] == "DELETED"
    tenant.close()
