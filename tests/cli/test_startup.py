"""The CLI starts fast: `--help`, `version`, `call` and `connect` import nothing of the server.

Each case runs the CLI in a fresh interpreter (as a person's shell does) and reports which
modules it had imported when the command finished; `bench/startup.py` times the same commands.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import click.testing
import pytest
import typer
import typer.main

from keygate.cli.main import COMMANDS, app
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate

# The server's stack and the heavy libraries the operator commands use: a client command that
# imports one of these pays its import on every run (pydantic alone is ~0.1 s).
HEAVY = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "granian",
    "pyreqwest",
    "httpx",
    "rich",
    "typer",
    "yaml",
    "jinja2",
    "cryptography",
    "keygate.settings",
    "keygate.runtime",
    "keygate.catalog.model",
    "keygate.store",
)

_PROBE = """
import json, sys
sys.argv = ["keygate", *json.loads(sys.argv[1])]
from keygate.cli.main import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in {heavy}))
with open({report!r}, "w") as out:
    json.dump({{"code": code, "heavy": heavy}}, out)
"""


@pytest.fixture
def tenant(sandboxed: SandboxedKeygate) -> Iterator[Tenant]:
    """A workspace and key on the sandboxed Keygate."""
    made = sandboxed.tenant()
    yield made
    made.close()


def imported_heavy(tmp_path: Path, args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run `keygate ARGS` in a fresh interpreter: its exit status and the heavy modules loaded."""
    report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    probe = _PROBE.format(heavy=repr(HEAVY), report=str(report))
    subprocess.run(
        [sys.executable, "-c", probe, json.dumps(args)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    found = json.loads(report.read_text())
    return int(found["code"] or 0), list(found["heavy"])


def test_help_version_call_and_connect_import_nothing_of_the_server(
    sandboxed: SandboxedKeygate, tenant: Tenant, tmp_path: Path
) -> None:
    connection = sandboxed.oauth_connection(tenant, "klaviyo")
    env = {"KEYGATE_URL": sandboxed.keygate.url, "KEYGATE_API_KEY": tenant.key, "PATH": ""}
    cases = [
        ["--help"],
        ["version"],
        ["call", "--help"],
        ["call", "klaviyo", "GET", "/api/accounts", "-i", "--connection", connection],
        ["call", "klaviyo", "GET", "/api/profiles?page[size]=1", "--all", "--items"],
        ["connect", "klaviyo", "--no-wait", "--json"],
    ]
    for args in cases:
        code, heavy = imported_heavy(tmp_path, args, env)
        assert code == 0, args
        assert heavy == [], f"keygate {' '.join(args)} imported {heavy}"


def test_an_operator_command_still_loads_its_server_code(tmp_path: Path) -> None:
    """The probe sees imports: an operator command imports the settings and the runtime."""
    env = {"KEYGATE_DATA_DIR": str(tmp_path / "data"), "PATH": ""}
    code, heavy = imported_heavy(tmp_path, ["keys", "list"], env)
    assert code != 0  # not initialised: a one-line error, after loading the store
    assert "keygate.runtime" in heavy
    assert "pydantic" in heavy


def _own_help(target: str) -> str:
    module_name, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    if isinstance(found, click.Command):
        text = found.help or ""
    elif isinstance(found, typer.Typer):
        text = typer.main.get_command(found).help or ""  # help=…, or its callback's docstring
    else:
        text = found.__doc__ or ""
    return " ".join(text.strip().split("\n\n")[0].split())


def test_each_registered_help_is_the_commands_own_and_help_lists_them_all() -> None:
    for entry in COMMANDS:
        assert entry.help == _own_help(entry.target), entry.name
    listed = click.testing.CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert listed.exit_code == 0
    commands = listed.stdout.split("Commands:", 1)[1]
    for entry in COMMANDS:
        assert f"  {entry.name}  " in commands
        assert entry.help in " ".join(commands.split())
