"""Keygate as separate processes sharing one store, the way a deployment runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from keygate.crypto import generate_key
from keygate.runtime import Runtime
from keygate.settings import Settings
from keygate.store.schema import utcnow
from tests.support.sandboxes import Sandbox, sandbox_env
from tests.support.servers import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    """Settings shared by every Keygate process of one test: data dir, database, key, apps."""

    data_dir: Path
    database_url: str
    sandbox: Sandbox | ServerThread
    """The app's upstream: a provider sandbox, or any server (the recording upstream)."""
    app: str
    encryption_key: str = field(default_factory=generate_key)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        """Where the processes listen."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """KEYGATE_* variables for a process of this deployment."""
        values = {
            "KEYGATE_DATA_DIR": str(self.data_dir),
            "KEYGATE_DATABASE_URL": self.database_url,
            "KEYGATE_ENCRYPTION_KEY": self.encryption_key,
            "KEYGATE_PUBLIC_URL": self.url,
            "KEYGATE_PORT": str(self.port),
            "KEYGATE_REFRESH_MARGIN_SECONDS": "1",
            "KEYGATE_LOG_LEVEL": "INFO",
            # Off unless a test asks (see KeygateHarness).
            "KEYGATE_PROACTIVE_REFRESH": "false",
            # All from 127.0.0.1 (see KeygateHarness); their own tests turn them on.
            "KEYGATE_CONTROL_RATE_LIMIT_PER_SECOND": "0",
            "KEYGATE_UNKNOWN_KEY_RATE_LIMIT_PER_SECOND": "0",
            **sandbox_env(self.app, self.sandbox),
        }
        return {**os.environ, **values}

    def settings(self) -> Settings:
        """The same settings, for preparing the store in-process."""
        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            public_url=self.url,
            encryption_key=SecretStr(self.encryption_key),
        )

    def prepare(self, values: dict[str, str], expires_in: int) -> tuple[str, str]:
        """A workspace, an API key and an ACTIVE connection holding `values`: (key, id)."""

        async def make() -> tuple[str, str]:
            runtime = await Runtime.open(self.settings())
            try:
                ws = await runtime.keys.ensure_workspace("default")
                key, _ = await runtime.keys.create_key(ws.id)
                conn = await runtime.connections.create(ws.id, self.app, "OAUTH2", {})
                expires = utcnow() + timedelta(seconds=expires_in)
                await runtime.connections.activate(conn.id, values, expires)
                return key, conn.id
            finally:
                await runtime.close()

        return asyncio.run(make())

    def start(self, argv: list[str], extra_env: dict[str, str] | None = None) -> Process:
        """Start a Keygate process and wait until it answers /healthz."""
        log = self.data_dir / f"process-{time.monotonic_ns()}.log"
        with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**self.env(), **(extra_env or {})},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        process = Process(popen, log)
        try:
            wait_until_serving(self.url, popen, process.output, within=30)
        except BaseException:
            process.stop()
            raise
        return process

    def serve(self, workers: int = 1, extra_env: dict[str, str] | None = None) -> Process:
        """`keygate serve` with granian."""
        keygate = str(Path(sys.executable).with_name("keygate"))
        argv = [keygate, "serve", "--workers", str(workers), "--port", str(self.port)]
        return self.start(argv, extra_env)

    def crashable(self, crash_at: str) -> Process:
        """A single uvicorn process that SIGKILLs itself at a refresh step."""
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tests.support.crash_app:create",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        return self.start(argv, {"KEYGATE_TEST_CRASH_AT": crash_at})


@dataclass
class Process:
    """A running Keygate process and its log."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the process printed."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate and wait (kill if it lingers)."""
        stop_process(self.popen)


def wait_until_serving(
    url: str, popen: subprocess.Popen[bytes], output: Callable[[], str], within: float = 60
) -> None:
    """Wait until the Keygate at `url` answers /healthz; fail with its `output()` if the process
    exits first or does not answer `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        if popen.poll() is not None:
            raise RuntimeError(f"Keygate exited early:\n{output()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"Keygate did not answer /healthz in {within:g} s:\n{output()}")
        time.sleep(0.1)


def stop_process(popen: subprocess.Popen[Any], *, group: bool = False) -> None:
    """Terminate a child and wait for it (kill it if it lingers); with `group`, its whole
    process group (a child started with `start_new_session`, such as `make run`)."""
    if popen.poll() is not None:
        return
    if group:
        os.killpg(popen.pid, signal.SIGTERM)
    else:
        popen.terminate()
    try:
        popen.wait(20)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(popen.pid, signal.SIGKILL)
        else:
            popen.kill()
        popen.wait(10)
