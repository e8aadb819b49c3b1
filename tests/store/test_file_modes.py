"""The SQLite store is private to Keygate's user, like the key file: files 0600, dirs 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from keygate.cli.main import app as cli
from tests.support.harness import KeygateHarness


def mode(path: Path) -> int:
    """The permission bits of a file or directory."""
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_store_is_private(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "db"  # neither exists yet: Keygate creates both
    database = directory / "keygate.db"
    # A permissive umask, as on many hosts: the modes must not depend on it.
    previous = os.umask(0o022)
    try:
        harness = KeygateHarness(tmp_path, f"sqlite+aiosqlite:///{database}")
    finally:
        os.umask(previous)
    try:
        tenant = harness.tenant()
        # A write over HTTP, so the WAL and shared-memory files exist too.
        assert tenant.http.post("/connections", json={"app": "klaviyo"}).status_code == 201
        tenant.close()
        files = sorted(p.name for p in directory.iterdir())
        assert {"keygate.db", "keygate.db-wal", "keygate.db-shm"} <= set(files)
        for name in files:
            assert mode(directory / name) == 0o600, f"{name} is {oct(mode(directory / name))}"
        assert mode(directory) == 0o700
        assert mode(tmp_path / "state") == 0o700
    finally:
        harness.stop()


def test_keygate_init_makes_a_private_data_dir(tmp_path: Path) -> None:
    from click.testing import CliRunner

    data_dir = tmp_path / "fresh" / ".keygate"
    previous = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli, ["init"], env={"KEYGATE_DATA_DIR": str(data_dir)})
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert mode(data_dir) == 0o700
    assert mode(tmp_path / "fresh") == 0o700
    for path in data_dir.iterdir():
        assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"
