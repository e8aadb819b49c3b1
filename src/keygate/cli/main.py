"""`keygate` and its sub-commands.

Start-up is paid on every run (an agent runs `keygate call` many times), so this module imports
only click: each command is named in `COMMANDS` with its one-line help and imported when it runs
(see `lazy.py`). To add a command, write its module (a typer function or `typer.Typer` group, as
the operator commands are, or a click command, as `call` is, when its start-up matters) and add
one `LazyCommand` line below. `tests/cli/test_startup.py` checks each line's help is the
command's own, and that `--help` and `call` import nothing of the server.
"""

from __future__ import annotations

import click

from keygate import __version__
from keygate.cli.lazy import LazyCommand, LazyGroup

COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "init",
        "keygate.cli.server_cmd:init",
        "Create the data dir, key file (0600), database, first workspace and API key.",
    ),
    LazyCommand(
        "serve",
        "keygate.cli.server_cmd:serve",
        "Serve every surface (control plane, connect pages, gateway) with granian.",
    ),
    LazyCommand(
        "sandbox",
        "keygate.cli.server_cmd:sandbox",
        "Run the Klaviyo and Constant Contact stand-ins on loopback.",
    ),
    LazyCommand(
        "keys",
        "keygate.cli.keys_cmd:app",
        "API keys (shown once at creation, stored only as hashes).",
    ),
    LazyCommand(
        "apps", "keygate.cli.apps_cmd:app", "The provider catalog and per-app operator settings."
    ),
    LazyCommand(
        "connections",
        "keygate.cli.connections_cmd:app",
        "Connections (the control plane from the shell).",
    ),
    LazyCommand(
        "encryption",
        "keygate.cli.encryption_cmd:app",
        "Encryption keys: add, rotate, re-encrypt, retire; rows per key.",
    ),
    LazyCommand(
        "connect",
        "keygate.cli.connect_cmd:connect",
        "Create a connection, show its link, and wait until it is ACTIVE or FAILED.",
    ),
    LazyCommand(
        "call",
        "keygate.cli.call_cmd:call",
        "Send METHOD /APP/PATH through the gateway with KEYGATE_API_KEY and print the answer.",
    ),
    LazyCommand(
        "mcp",
        "keygate.cli.mcp_cmd:mcp",
        "Speak MCP on stdin/stdout, with KEYGATE_API_KEY, against the Keygate at --url.",
    ),
    LazyCommand(
        "skills", "keygate.cli.skills_cmd:app", "Agent skills written for this deployment."
    ),
    LazyCommand(
        "logs",
        "keygate.cli.record_cmd:logs",
        "Print the gateway requests of the workspace of KEYGATE_API_KEY, oldest first.",
    ),
    LazyCommand(
        "events",
        "keygate.cli.record_cmd:events",
        "Print the audit events of the workspace of KEYGATE_API_KEY, oldest first.",
    ),
    LazyCommand(
        "webhooks",
        "keygate.cli.record_cmd:webhooks_app",
        "Webhook endpoints of the workspace of KEYGATE_API_KEY.",
    ),
    LazyCommand("version", "keygate.cli.main:version", "Print the version."),
)


class KeygateGroup(LazyGroup):
    """The root group: every command of `COMMANDS`."""

    registry = COMMANDS


# Plain click help for every command (typer's operator commands too), not rich panels: rendering
# help with rich imports ~0.1 s of modules, the whole start-up budget.
@click.group("keygate", cls=KeygateGroup)
def app() -> None:
    """Self-hosted API gateway with managed OAuth."""


@click.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
