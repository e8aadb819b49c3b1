"""What every scenario shares: the upstream, the reference proxy, bare, and a Keygate deployment.

All servers under test are started up front and stay idle until measured, so the main table's
rows are measured back to back, minutes apart at most, under the same machine noise.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import nginx
from bench.bodies import GB, MB, sparse_file
from bench.deploy import Deployment, Serving, import_connection, make_deployment, serve
from bench.procs import SERVER_CORE, Started, Supervisor, free_port, pinned, wait_for_port

DOWNLOAD_SIZE = GB
UPLOAD_SIZE = 200 * MB


def tree(pid: int) -> Callable[[], list[psutil.Process]]:
    """A function listing a process and its descendants (evaluated when called)."""

    def processes() -> list[psutil.Process]:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    return processes


@dataclass
class Environment:
    """The shared servers of one run."""

    sup: Supervisor
    run_dir: Path
    duration: float
    warmup: float
    upstream: nginx.Nginx
    proxy: nginx.Nginx
    bare: Started
    bare_port: int
    deployment: Deployment
    keygate: dict[int, Serving]
    slices: int = 5
    """Turns the main table's compared rows take (see `bench.wrk.measure_interleaved`)."""

    @classmethod
    def start(cls, sup: Supervisor, run_dir: Path, duration: float, warmup: float) -> Environment:
        """Start nginx (upstream and proxy), bare, and Keygate with one and with two workers."""
        files = run_dir / "files"
        sparse_file(files / "big.bin", DOWNLOAD_SIZE)
        sparse_file(run_dir / "upload.bin", UPLOAD_SIZE)
        upstream = nginx.start_upstream(sup, run_dir, free_port(), files)
        proxy = nginx.start_proxy(sup, run_dir, free_port(), upstream.port)
        bare_port = free_port()
        bare = sup.start(
            "bare",
            pinned(
                SERVER_CORE,
                [
                    sys.executable,
                    "-m",
                    "bench.bare",
                    "--port",
                    str(bare_port),
                    "--upstream",
                    upstream.url,
                ],
            ),
        )
        wait_for_port(bare_port, 60, bare.alive)
        deployment = make_deployment(
            run_dir / "keygate", {"KEYGATE_APPS__KLAVIYO__BASE_URL": upstream.url}
        )
        deployment.connection_id = import_connection(deployment, "klaviyo", "upstream-token")
        servers = {
            workers: serve(sup, deployment, f"keygate-{workers}w", free_port(), workers)
            for workers in (1, 2)
        }
        return cls(
            sup, run_dir, duration, warmup, upstream, proxy, bare, bare_port, deployment, servers
        )

    @property
    def bare_url(self) -> str:
        """The bare pass-through's origin."""
        return f"http://127.0.0.1:{self.bare_port}"

    def auth_headers(self, deployment: Deployment | None = None) -> list[tuple[str, str]]:
        """The caller's headers: its Keygate key and the connection it picks."""
        used = deployment or self.deployment
        return [
            ("Authorization", f"Bearer {used.api_key}"),
            ("Maton-Connection", used.connection_id),
        ]


def pids(processes: Sequence[psutil.Process]) -> list[int]:
    """The pids of these processes."""
    return [process.pid for process in processes]
