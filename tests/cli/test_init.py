"""`keygate init`: data dir, key file (0600), database, first workspace, a key printed once."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable

from keygate.crypto import generate_key, hash_api_key
from tests.cli.conftest import PG_URL, Cli

KEY = re.compile(r"kg_[A-Za-z0-9_-]{20,}")


def test_init_creates_everything_and_prints_the_key_once(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli()
    assert not cli.data_dir.exists()
    # The console script (the smoke test of the group); later commands run in-process.
    done = cli.spawn("init")
    assert done.returncode == 0, done.stderr
    keys = KEY.findall(done.stdout)
    assert len(keys) == 1
    key_file = cli.data_dir / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (cli.data_dir / "keygate.db").exists() is (PG_URL is None)
    # The database holds the key's hash, never the key.
    stored = cli.stored()
    assert hash_api_key(keys[0]).encode() in stored
    assert keys[0].encode() not in stored
    master = key_file.read_text()

    again = cli.json("init")
    assert again["key"] is None
    assert again["key_file_created"] is False
    assert key_file.read_text() == master
    listed = cli.json("keys", "list")["keys"]
    assert [(k["workspace"], k["prefix"]) for k in listed] == [("default", keys[0][:11])]


def test_init_json_shape_with_the_key_in_the_environment(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(KEYGATE_ENCRYPTION_KEY=generate_key())
    result = cli.json("init", "--workspace", "acme")
    assert set(result) == {"data_dir", "database", "key_file_created", "workspace", "key"}
    assert result["data_dir"] == str(cli.data_dir.resolve())
    assert result["database"] == ("postgresql" if PG_URL else "sqlite")
    assert result["workspace"] == "acme"
    assert KEY.fullmatch(result["key"])
    # KEYGATE_ENCRYPTION_KEY wins: no key file is written beside it.
    assert result["key_file_created"] is False
    assert not (cli.data_dir / "encryption.key").exists()


def test_init_refuses_a_bad_environment_key(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(KEYGATE_ENCRYPTION_KEY="not base64!")
    line = cli.fails("init")
    assert "KEYGATE_ENCRYPTION_KEY" in line
    assert "base64" in line
