"""The README's Python SDK examples, and its official-SDK example, run against a live Keygate.

Each block runs as written, in its own interpreter, with only `KEYGATE_URL` and
`KEYGATE_API_KEY` set; a stand-in person approves the connect link the first block prints (by
pasting the Klaviyo sandbox's private key on the connect page), as the reader would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keygate.sandbox import DEFAULT_PRIVATE_KEY
from keygate.sandbox.klaviyo.store import ACCOUNT_ID
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate
from tests.support.snippets import Person

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks of the README section that starts at `heading`."""
    text = README.read_text()
    level = heading.split(" ", 1)[0]
    section = text.split(heading + "\n", 1)[1]
    section = re.split(rf"\n#{{1,{len(level)}}} ", section, maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture
def reader(sandboxed: SandboxedKeygate) -> Iterator[tuple[Tenant, dict[str, str]]]:
    """A fresh workspace with a Constant Contact connection holding a few contacts, and the
    environment the README's reader has."""
    tenant = sandboxed.tenant()
    sandboxed.oauth_connection(tenant, "constant-contact")
    for n in range(3):
        body = {"email_address": {"address": f"reader-{n}@example.com"}, "create_source": "Account"}
        tenant.http.post("/constant-contact/v3/contacts", json=body)
    env = {**os.environ, "KEYGATE_URL": sandboxed.keygate.url, "KEYGATE_API_KEY": tenant.key}
    yield tenant, env
    tenant.close()


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{code}\n---\n{done.stderr}"
    return done.stdout


def test_the_sdk_examples_run(reader: tuple[Tenant, dict[str, str]]) -> None:
    tenant, env = reader
    blocks = python_blocks("## Python SDK")
    assert len(blocks) == 6
    person = Person(tenant)
    try:
        connect, calls, pages, failures, options, concurrent = (_run(b, env) for b in blocks)
    finally:
        person.stop()
    assert "Open this link to connect Klaviyo: http" in connect
    assert " ACTIVE\n" in connect
    assert person.approved == 1
    assert "klaviyo ['OAUTH2', 'API_KEY']" in connect
    assert calls.splitlines()[-1] == "Ada"
    assert "ada.lovelace@example.com" in pages
    assert "2 contacts on this page" in pages
    assert "reader-0@example.com" in pages
    assert "Constant Contact answered 404" in failures
    assert "connection_not_found 404" in failures
    assert "next='links.next'" in options
    assert "2 connections" in concurrent
    assert "ada.lovelace@example.com" in concurrent


def test_the_official_sdk_example_runs(
    reader: tuple[Tenant, dict[str, str]], sandboxed: SandboxedKeygate
) -> None:
    tenant, env = reader
    sandboxed.keygate.import_connection(
        tenant, "klaviyo", {"api_key": DEFAULT_PRIVATE_KEY}, method="API_KEY"
    )
    profile = {"data": {"type": "profile", "attributes": {"email": "official@example.com"}}}
    assert tenant.http.post("/klaviyo/api/profiles", json=profile).status_code == 201
    (block,) = python_blocks("#### Official SDKs unchanged")
    account, emails = _run(block, env).splitlines()
    assert account == ACCOUNT_ID
    assert "official@example.com" in emails
