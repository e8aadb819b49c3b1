"""A throwaway PostgreSQL server of a test's own, which the test can stop and start again.

The same steps as `scripts/pg.sh`, from Python: the suite's shared server
(KEYGATE_TEST_DATABASE_URL) must not be stopped under other tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.databases import create_postgres_database
from tests.support.servers import free_port


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None (Debian's layout)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory, on a free loopback port."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        # Not under pytest's tmp_path: its parents are 0700, and the server may run as
        # `postgres` (it refuses to run as root).
        self.dir = Path(tempfile.mkdtemp(prefix="keygate-pg-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/keygate"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run(
            "initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.start()
        admin = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        asyncio.run(create_postgres_database(admin, "keygate"))

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_postgres, str(self._bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c full_page_writes=off"
        )
        data = str(self.dir / "data")
        self._run("pg_ctl", "-D", data, "-l", str(self.dir / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        """Stop the server (open connections are closed, as in a restart)."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs, and remove its files."""
        subprocess.run(
            [
                *self._as_postgres,
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(self.dir, ignore_errors=True)
