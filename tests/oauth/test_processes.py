"""Single flight and crash safety across real processes sharing one store."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.processes import Deployment
from tests.support.sandboxes import Sandbox, start_sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A Constant Contact sandbox: rotating refresh tokens, as the provider defaults to."""
    made = start_sandbox("constant-contact", "http://127.0.0.1:1/oauth/callback")
    yield made
    made.server.stop()


def storm(url: str, key: str, connection: str, count: int) -> list[int]:
    """`count` concurrent gateway requests on one connection."""

    async def run() -> list[int]:
        async with httpx.AsyncClient(
            base_url=url,
            timeout=60,
            limits=httpx.Limits(max_connections=count),
            headers={"Authorization": f"Bearer {key}", "Maton-Connection": connection},
        ) as client:
            responses = await asyncio.gather(
                *(client.get("/constant-contact/v3/account/summary") for _ in range(count))
            )
        return [r.status_code for r in responses]

    return asyncio.run(run())


def expired_connection(
    tmp_path: Path, sandbox: Sandbox, database: str
) -> tuple[Deployment, str, str]:
    """A deployment with an API key and one connection whose access token has expired, at
    Keygate and at the provider: (deployment, key, connection id)."""
    deployment = Deployment(
        tmp_path, fresh_database(tmp_path, database), sandbox, "constant-contact"
    )
    tokens = sandbox.mint_tokens()
    key, conn = deployment.prepare(
        {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]},
        expires_in=-10,
    )
    sandbox.admin("expire_access_tokens", {})
    return deployment, key, conn


def test_two_workers_share_one_refresh(tmp_path: Path, sandbox: Sandbox) -> None:
    deployment, key, conn = expired_connection(tmp_path, sandbox, "kg_two_workers")
    sandbox.admin("faults", {"token_endpoint": "slow", "token_delay": 0.5})
    server = deployment.serve(workers=2)
    try:
        # /healthz answers as soon as one worker is up: a storm sent then all goes to it.
        deadline = time.monotonic() + 30
        while (
            len(set(re.findall(r"pid=(\d+) _granian\.serve Started worker", server.output()))) < 2
        ):
            assert time.monotonic() < deadline, server.output()[-2000:]
            time.sleep(0.05)
        statuses = storm(deployment.url, key, conn, 200)
    finally:
        server.stop()
    assert statuses == [200] * 200
    assert sandbox.admin("stats")["token_requests"] == {"refresh_token": 1}
    # Both workers answered part of the storm (each logs its pid on access lines).
    pids = set(re.findall(r"pid=(\d+) keygate\.access", server.output()))
    assert len(pids) == 2, server.output()[-2000:]


@pytest.mark.parametrize(
    ("step", "expected"),
    [("locked", 200), ("token_received", 424), ("committed", 200)],
)
def test_crash_at_each_refresh_step_never_leaves_a_silently_broken_connection(
    tmp_path: Path, sandbox: Sandbox, step: str, expected: int
) -> None:
    deployment, key, conn = expired_connection(tmp_path, sandbox, f"kg_crash_{step}")
    headers = {"Authorization": f"Bearer {key}", "Maton-Connection": conn}
    doomed = deployment.crashable(step)
    with pytest.raises(httpx.TransportError):
        httpx.get(
            f"{deployment.url}/constant-contact/v3/account/summary", headers=headers, timeout=30
        )
    assert doomed.popen.wait(15) == -signal.SIGKILL

    restarted = deployment.serve()
    try:
        response = httpx.get(
            f"{deployment.url}/constant-contact/v3/account/summary", headers=headers, timeout=30
        )
        shown = httpx.get(f"{deployment.url}/connections/{conn}", headers=headers).json()
    finally:
        restarted.stop()
    assert response.status_code == expected, response.text
    if expected == 200:
        assert shown["connection"]["status"] == "ACTIVE"
    else:
        # The rotated token died with the process: the connection says so, loudly.
        assert response.json()["error"]["code"] == "reauthorization_required"
        assert shown["connection"]["status"] == "FAILED"
        assert shown["connection"]["error"]["code"] == "reauthorization_required"


def test_a_slow_refresh_does_not_hold_up_other_writes(tmp_path: Path, sandbox: Sandbox) -> None:
    """While the provider takes its time over a refresh, the rest of Keygate can still write."""
    deployment, key, conn = expired_connection(tmp_path, sandbox, "kg_slow_refresh")
    delay = 5.0
    sandbox.admin("faults", {"token_endpoint": "slow", "token_delay": delay})
    headers = {"Authorization": f"Bearer {key}", "Maton-Connection": conn}
    server = deployment.serve()
    try:
        with ThreadPoolExecutor(1) as pool:
            proxied = pool.submit(
                httpx.get,
                f"{deployment.url}/constant-contact/v3/account/summary",
                headers=headers,
                timeout=30,
            )
            deadline = time.monotonic() + 10
            while sandbox.admin("stats")["token_requests_total"] == 0:
                assert time.monotonic() < deadline, "the refresh never reached the provider"
                time.sleep(0.05)
            # The refresh is now waiting on the provider: a write elsewhere goes through.
            started = time.monotonic()
            created = httpx.post(
                f"{deployment.url}/connections",
                json={"app": "constant-contact"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            took = time.monotonic() - started
            refresh_pending = not proxied.done()
            response = proxied.result()
    finally:
        server.stop()
    assert created.status_code == 201, created.text
    assert refresh_pending, f"the write waited {took:.1f} s, until the refresh was done"
    assert took < delay / 2, f"the write waited {took:.1f} s for the refresh"
    assert response.status_code == 200, response.text
    assert sandbox.admin("stats")["token_requests"] == {"refresh_token": 1}
