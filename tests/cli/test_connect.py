"""`keygate connect` as a person runs it: the command waits in a subprocess while the test, as
the person, completes the connect page (API-key form, or the OAuth sandbox's consent)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from keygate.cli.status_line import SPINNER
from keygate.sandbox.config import DEFAULT_PRIVATE_KEY
from tests.cli.conftest import KEYGATE
from tests.connect.oauth_dance import Browser
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate

WAIT = 60  # seconds any step may take on a loaded machine


@pytest.fixture
def tenant(sandboxed: SandboxedKeygate) -> Iterator[Tenant]:
    """A fresh workspace and key on the sandboxed Keygate."""
    made = sandboxed.tenant()
    yield made
    made.close()


def start(
    sandboxed: SandboxedKeygate, tenant: Tenant, *args: str, **env: str
) -> subprocess.Popen[str]:
    """`keygate connect ARGS` in a subprocess, pointed at the sandboxed Keygate."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
    return subprocess.Popen(
        [str(KEYGATE), "connect", *args],
        env={**base, "KEYGATE_URL": sandboxed.keygate.url, "KEYGATE_API_KEY": tenant.key, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(stream: IO[str] | None) -> str:
    """The next line the command printed (it flushes each one)."""
    assert stream is not None
    return stream.readline().rstrip("\n")


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for the command; its status and the rest of its stdout and stderr."""
    out, err = process.communicate(timeout=WAIT)
    return process.returncode, out, err


def submit_api_key(link: str, api_key: str) -> None:
    """Fill in the API-key form of a connect page, as a browser would."""
    with httpx.Client(timeout=WAIT) as browser:
        page = browser.get(link)
        assert page.status_code == 200, page.text
        token = re.search(r'name="session_token" value="([^"]+)"', page.text)
        action = re.search(r'<form method="post" action="([^"]+)"[^>]*autocomplete', page.text)
        assert token, page.text
        assert action, page.text
        sent = browser.post(
            httpx.URL(link).join(action.group(1)),
            data={"session_token": token.group(1), "api_key": api_key},
        )
        assert sent.status_code == 200, sent.text


def status_of(tenant: Tenant, connection_id: str) -> dict[str, Any]:
    """The connection as the control plane shows it."""
    connection: dict[str, Any] = tenant.http.get(f"/connections/{connection_id}").json()[
        "connection"
    ]
    return connection


def test_api_key_connection_prints_the_link_and_waits_until_active(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    process = start(sandboxed, tenant, "klaviyo", "--method", "API_KEY")
    announced = read_line(process.stdout)
    match = re.fullmatch(
        r"Created (\S+) \(klaviyo, API_KEY, PENDING\)\. Open this link to authorize it:", announced
    )
    assert match, announced
    link = read_line(process.stdout)
    assert link.startswith(f"{sandboxed.keygate.url}/connect?session_token=")
    time.sleep(1.5)  # it is waiting: still running, the connection still PENDING
    assert process.poll() is None
    assert status_of(tenant, match.group(1))["status"] == "PENDING"
    submit_api_key(link, DEFAULT_PRIVATE_KEY)
    code, out, err = finish(process)
    assert code == 0, err
    assert out == f"Connected: {match.group(1)} (klaviyo) is ACTIVE.\n"
    # Not a terminal: plain lines on stderr, no spinner frames or carriage returns.
    assert err.startswith(f"Waiting up to 600 s for {match.group(1)} to be authorized...")
    assert "\r" not in err
    assert status_of(tenant, match.group(1))["status"] == "ACTIVE"


def _browser_script(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for the person's browser: records the URL it is asked to open."""
    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, opened


def _opened(opened: Path) -> str:
    deadline = time.monotonic() + WAIT
    while not opened.exists() or not opened.read_text():
        assert time.monotonic() < deadline, "the browser was never asked to open the link"
        time.sleep(0.05)
    return opened.read_text()


def test_oauth_connect_opens_the_browser_and_reports_json_lines(
    sandboxed: SandboxedKeygate, tenant: Tenant, tmp_path: Path
) -> None:
    script, opened = _browser_script(tmp_path)
    process = start(sandboxed, tenant, "constant-contact", "--open", "--json", BROWSER=str(script))
    created = json.loads(read_line(process.stdout))["connection"]
    assert (created["status"], created["method"]) == ("PENDING", "OAUTH2")
    assert _opened(opened) == created["url"]
    browser = Browser()
    try:
        done = browser.authorize(created["url"])
        assert done.status_code == 200, done.text
    finally:
        browser.close()
    code, out, err = finish(process)
    assert code == 0, err
    ended = json.loads(out)["connection"]
    assert ended["connection_id"] == created["connection_id"]
    assert ended["status"] == "ACTIVE"


def test_a_refused_consent_ends_failed_with_the_reason(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    process = start(sandboxed, tenant, "constant-contact")
    read_line(process.stdout)
    link = read_line(process.stdout)
    browser = Browser()
    try:
        browser.authorize(link, decision="deny")
    finally:
        browser.close()
    code, out, err = finish(process)
    assert code == 1
    assert out == ""
    line = err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: \S+ \(constant-contact\) is FAILED: .+ \(\w+\); "
        r"run 'keygate connect constant-contact' to try again",
        line,
    ), line


def test_nobody_authorizes_it_gives_up_at_the_timeout(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    started = time.monotonic()
    process = start(sandboxed, tenant, "klaviyo", "--timeout", "1.5")
    read_line(process.stdout)
    code, _, err = finish(process)
    assert code == 3
    assert time.monotonic() - started >= 1.5
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: gave up after 1.5 s: ")
    assert "is still PENDING" in line


def test_no_wait_and_errors(sandboxed: SandboxedKeygate, tenant: Tenant) -> None:
    process = start(sandboxed, tenant, "klaviyo", "--no-wait", "--json")
    code, out, err = finish(process)
    assert code == 0, err
    assert json.loads(out)["connection"]["status"] == "PENDING"
    assert err == ""
    unknown = start(sandboxed, tenant, "nope")
    code, out, err = finish(unknown)
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()
    assert line.startswith("error: cannot create a nope connection: Unknown app 'nope'")
    bad_key = start(sandboxed, tenant, "klaviyo", KEYGATE_API_KEY="kg_wrong")
    code, _, err = finish(bad_key)
    assert code == 1
    assert "(invalid_api_key)" in err
    assert "KEYGATE_API_KEY" in err
    assert "kg_wrong" not in err


def test_on_a_terminal_a_spinner_turns_on_stderr_and_is_cleared(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    controller, terminal = pty.openpty()
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
        process = subprocess.Popen(
            [str(KEYGATE), "connect", "klaviyo", "--method", "API_KEY"],
            env={**base, "KEYGATE_URL": sandboxed.keygate.url, "KEYGATE_API_KEY": tenant.key},
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
        )
        os.close(terminal)
        read_line(process.stdout)
        link = read_line(process.stdout)
        seen = b""
        deadline = time.monotonic() + WAIT
        while SPINNER[1].encode() not in seen:  # a second frame: it turns
            assert time.monotonic() < deadline, seen
            if select.select([controller], [], [], 1)[0]:
                seen += os.read(controller, 4096)
        submit_api_key(link, DEFAULT_PRIVATE_KEY)
        code, out, _ = finish(process)
        assert code == 0
        assert out.startswith("Connected: ")
        with contextlib.suppress(OSError):  # the terminal closes with the process
            while chunk := os.read(controller, 4096):
                seen += chunk
    finally:
        os.close(controller)
    text = seen.decode()
    assert "waiting for authorization..." in text
    assert "\r" in text
    # The last thing on the terminal is the line cleared: no frame left behind.
    assert text.endswith("\r\x1b[2K")
