"""`make run PORT=… SANDBOX_PORT=…`: the newcomer's command serves on the ports given."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Cli
from tests.support.processes import stop_process
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_honours_port_and_sandbox_port(
    make_cli: Callable[..., Cli], tmp_path: Path
) -> None:
    cli = make_cli()
    port, sandbox_port = free_port(), free_port()
    # The sandboxes take SANDBOX_PORT and the next one: find a pair that is free.
    while not (sandbox_port + 1 != port and _port_free(sandbox_port + 1)):
        sandbox_port = free_port()
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}", f"SANDBOX_PORT={sandbox_port}"],
            cwd=ROOT,
            env=cli.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make, keygate and granian's workers
        )
    try:
        keygate = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while not _answers(f"{keygate}/healthz"):
            assert make.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"make run did not serve :{port}: {log.read_text()}"
            time.sleep(0.2)
        assert httpx.get(f"{keygate}/healthz", timeout=5).status_code == 200
        for sandbox in (sandbox_port, sandbox_port + 1):
            assert _answers(f"http://127.0.0.1:{sandbox}/"), f"no sandbox on :{sandbox}"
        output = log.read_text()
        assert f"http://127.0.0.1:{sandbox_port}" in output  # the tour names the ports in use
        assert "127.0.0.1:8080" not in output
        assert "127.0.0.1:9010" not in output
    finally:
        stop_process(make, group=True)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
