"""The `keygate` command run as an operator runs it, with KEYGATE_* variables.

Commands run in-process through click's test runner (a subprocess pays again, per command, the
imports of the server code it runs); `Cli.spawn` runs the real console script, for one smoke
test per command group.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from keygate.cli.main import app
from keygate.crypto import Cipher, KeyFile
from tests.support.databases import PG_URL, create_postgres_database
from tests.support.stored import stored_bytes

KEYGATE = Path(sys.executable).parent / "keygate"
_databases = itertools.count()


@dataclass
class Cli:
    """One Keygate installation (data dir and database) driven through its command line."""

    data_dir: Path
    database_url: str | None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
        # 80 columns, as a terminal often is: tables must still show whole ids.
        base.update({"KEYGATE_DATA_DIR": str(self.data_dir), "COLUMNS": "80"})
        if self.database_url:
            base["KEYGATE_DATABASE_URL"] = self.database_url
        self.env = {**base, **self.env}

    @property
    def resolved_database_url(self) -> str:
        """The URL the CLI uses: the configured one, else the SQLite file in the data dir."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'keygate.db'}"

    def run(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `keygate ARGS…` in-process, in exactly this installation's environment."""
        wanted = {**self.env, **(env or {})}
        # The runner sets these for the call and restores them after; None unsets a variable.
        overlay: dict[str, str | None] = {k: None for k in os.environ if k not in wanted}
        overlay.update(wanted)
        # `serve` configures logging for its process (handlers on the runner's stderr, which
        # closes with the call): put the test process's logging back as it was.
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            result = CliRunner().invoke(app, list(args), input=input, env=overlay)
        finally:
            for handler in root.handlers:
                if handler not in handlers:
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            assert result.exc_info is not None
            stderr += "".join(traceback.format_exception(*result.exc_info))
        return subprocess.CompletedProcess(
            ["keygate", *args], result.exit_code, result.stdout, stderr
        )

    def spawn(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `keygate ARGS…` as a subprocess of the installed console script."""
        return subprocess.run(
            [str(KEYGATE), *args],
            input=input,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=60,
            check=False,
        )

    def parallel(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Run independent commands one after the other (in-process, each costs little)."""
        return [self.run(*args) for args in commands]

    def ok(self, *args: str, **kwargs: Any) -> str:
        """Run a command that must succeed; its stdout."""
        done = self.run(*args, **kwargs)
        assert done.returncode == 0, f"keygate {' '.join(args)} failed: {done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run a command with --json; its parsed output."""
        return orjson.loads(self.ok(*args, "--json", **kwargs))

    def fails(self, *args: str, **kwargs: Any) -> str:
        """Run a command that must fail with one error line on stderr; that line."""
        done = self.run(*args, **kwargs)
        return assert_one_line_error(done)

    def stored(self) -> bytes:
        """Everything the database holds, as bytes."""
        return stored_bytes(self.resolved_database_url)

    def cipher(self) -> Cipher:
        """The installation's credential cipher, from its key file."""
        return Cipher.from_keys(KeyFile(self.data_dir / "encryption.key").read())


def assert_one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """A failed command: non-zero exit, one `error:` line on stderr, no traceback."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def make_cli(tmp_path: Path) -> Callable[..., Cli]:
    """Makes fresh installations (own data dir; own PostgreSQL database on PostgreSQL runs)."""

    def make(**env: str) -> Cli:
        directory = tmp_path / f"keygate-{uuid.uuid4().hex[:8]}"
        url = None
        if PG_URL:
            name = f"keygate_cli_{os.getpid()}_{next(_databases)}"
            url = asyncio.run(create_postgres_database(PG_URL, name))
        return Cli(directory, url, env)

    return make


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    """One initialised installation shared by a module, with its first API key."""
    directory = tmp_path_factory.mktemp("keygate-cli")
    url = None
    if PG_URL:
        name = f"keygate_cli_{os.getpid()}_{next(_databases)}"
        url = asyncio.run(create_postgres_database(PG_URL, name))
    cli = Cli(directory / "data", url)
    key = cli.json("init")["key"]
    assert isinstance(key, str)
    return cli, key
