"""Keygate deployed as an operator would: `keygate init`, `connections import`, `keygate serve`.

Configuration goes through the documented KEYGATE_* variables only. The serving process runs
pinned to the server core with access logging on; its stderr (where the access log goes) is
written to a file in the run directory, as a process manager would capture it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.procs import SERVER_CORE, Started, Supervisor, pinned, wait_for_port

KEYGATE = str(Path(sys.executable).with_name("keygate"))


@dataclass
class Deployment:
    """A Keygate data directory (and optionally database) with its environment."""

    data_dir: Path
    env: dict[str, str]
    api_key: str = ""
    connection_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> dict[str, object]:
        """Run `keygate ARGS --json` in this deployment's environment and parse its output."""
        done = subprocess.run(
            [KEYGATE, *args, "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"keygate {' '.join(args)} failed: {done.stderr or done.stdout}")
        parsed: dict[str, object] = json.loads(done.stdout)
        return parsed


def make_deployment(
    data_dir: Path, app_env: Mapping[str, str], database_url: str | None = None
) -> Deployment:
    """`keygate init` a fresh data directory (and database) for these app overrides."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KEYGATE_DATA_DIR": str(data_dir),
        "KEYGATE_ACCESS_LOG": "true",
        "KEYGATE_LOG_LEVEL": "INFO",
        **app_env,
    }
    if database_url:
        env["KEYGATE_DATABASE_URL"] = database_url
    deployment = Deployment(data_dir, env)
    initialised = deployment.cli("init")
    deployment.api_key = str(initialised["key"])
    return deployment


def import_connection(deployment: Deployment, app: str, token: str, *extra: str) -> str:
    """`keygate connections import` an ACTIVE OAuth connection; its id."""
    made = deployment.cli("connections", "import", app, "--access-token", token, *extra)
    connection = made["connection"]
    assert isinstance(connection, dict)
    return str(connection["connection_id"])


@dataclass
class Serving:
    """A running `keygate serve`."""

    process: Started
    port: int

    @property
    def url(self) -> str:
        """Its origin."""
        return f"http://127.0.0.1:{self.port}"

    def processes(self) -> list[psutil.Process]:
        """The granian main process and its workers."""
        main = psutil.Process(self.process.pid)
        return [main, *main.children(recursive=True)]

    def workers(self) -> list[psutil.Process]:
        """The worker processes only."""
        children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return children


def serve(sup: Supervisor, deployment: Deployment, name: str, port: int, workers: int) -> Serving:
    """`keygate serve` pinned to the server core; waits until it answers."""
    argv = pinned(
        SERVER_CORE,
        [KEYGATE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
    )
    env = {**deployment.env, "KEYGATE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    started = sup.start(name, argv, env=env)
    try:
        wait_for_port(port, 60, started.alive)
    except RuntimeError as exc:
        raise RuntimeError(f"{name} did not start: {exc}\n{started.tail()}") from exc
    serving = Serving(started, port)
    _wait_for_workers(serving, workers)
    return serving


def _wait_for_workers(serving: Serving, count: int) -> None:
    import time

    deadline = time.monotonic() + 30
    while len(serving.workers()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"keygate serve did not start {count} workers")
        time.sleep(0.1)
