"""`keygate` and its sub-commands."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from keygate import __version__
from keygate.cli import (
    apps_cmd,
    call_cmd,
    connections_cmd,
    encryption_cmd,
    keys_cmd,
    mcp_cmd,
    record_cmd,
)
from keygate.cli.context import load_settings
from keygate.cli.output import emit_json, fail
from keygate.crypto import write_key_file
from keygate.errors import ConfigurationError
from keygate.runtime import Runtime

app = typer.Typer(
    name="keygate",
    help="Self-hosted API gateway with managed OAuth.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(apps_cmd.app, name="apps")
app.add_typer(connections_cmd.app, name="connections")
app.add_typer(encryption_cmd.app, name="encryption")
app.command("call")(call_cmd.call)
app.command("logs")(record_cmd.logs)
app.command("events")(record_cmd.events)
app.add_typer(record_cmd.webhooks_app, name="webhooks")
app.command("mcp")(mcp_cmd.mcp)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

skills_app = typer.Typer(help="Agent skills written for this deployment.", no_args_is_help=True)
app.add_typer(skills_app, name="skills")


@skills_app.command("export")
def skills_export(
    app_name: Annotated[
        str | None, typer.Option("--app", help="Only this app (default: every app + keygate).")
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the texts: en or zh.")] = "en",
    out: Annotated[Path, typer.Option(help="Folder to write <skill>/SKILL.md into.")] = Path(
        "skills"
    ),
    json_out: JsonOpt = False,
) -> None:
    """Write the agent skills (Agent Skills format) for this deployment's public URL."""
    from keygate.cli.skills_cmd import export

    export(app_name, lang, out, json_out)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def init(
    workspace: Annotated[str, typer.Option(help="Name of the first workspace.")] = "default",
    json_out: JsonOpt = False,
) -> None:
    """Create the data dir, key file (0600), database, first workspace and API key."""
    settings = load_settings()
    created_key_file = False
    if settings.encryption_key is None and not settings.key_file.exists():
        write_key_file(settings.key_file)
        created_key_file = True

    async def _init() -> dict[str, object]:
        runtime = await Runtime.open(settings)
        try:
            existing = await runtime.keys.get_workspace(workspace)
            ws = existing or await runtime.keys.ensure_workspace(workspace)
            key = None
            if existing is None or not await runtime.keys.list_keys(ws.id):
                key, _ = await runtime.keys.create_key(ws.id, "initial")
            return {
                "data_dir": str(settings.data_dir.resolve()),
                "database": runtime.db.dialect,
                "key_file_created": created_key_file,
                "workspace": ws.name,
                "key": key,
            }
        finally:
            await runtime.close()

    try:
        result = asyncio.run(_init())
    except ConfigurationError as exc:
        fail(str(exc))
    if json_out:
        emit_json(result)
        return
    typer.echo(f"Keygate data directory: {result['data_dir']} ({result['database']})")
    if created_key_file:
        typer.echo(f"Encryption key written to {settings.key_file} (mode 0600). Back it up.")
    if result["key"]:
        typer.echo(f"API key for workspace {workspace!r} (shown once, store it now):")
        typer.echo(f"  {result['key']}")
    else:
        typer.echo(
            f"Already initialised; workspace {workspace!r} has keys. "
            "'keygate keys create' makes another."
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.", min=0, max=65535)] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.", min=1, max=64)] = None,
    sandbox: Annotated[
        bool, typer.Option(help="Also run the provider sandboxes and wire both apps to them.")
    ] = False,
    sandbox_port: Annotated[
        int, typer.Option(help="Klaviyo sandbox port; Constant Contact uses the next one.")
    ] = 9010,
) -> None:
    """Serve every surface (control plane, connect pages, gateway) with granian."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    from keygate.cli import sandbox_mode
    from keygate.log_format import configure_logging, logging_config
    from keygate.metrics import prepare_directory

    # Options win over KEYGATE_HOST/KEYGATE_PORT/KEYGATE_WORKERS, so the public URL follows them.
    given = {"host": host, "port": port, "workers": workers}
    settings = load_settings(**{k: v for k, v in given.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)  # migrations log in it too

    async def _migrate() -> str | None:
        runtime = await Runtime.open(settings)
        try:
            # Sandbox mode lives in the store, so CLI commands in other shells agree with us.
            if sandbox:
                origins = await sandbox_mode.enter_sandbox_mode(runtime, "127.0.0.1", sandbox_port)
                return sandbox_mode.tour(settings.public_url, origins, runtime)
            restored = await sandbox_mode.leave_sandbox_mode(runtime)
            if restored:
                return f"Left sandbox mode: restored your settings of {', '.join(restored)}."
            return None
        finally:
            await runtime.close()

    try:
        said = asyncio.run(_migrate())
    except ConfigurationError as exc:
        fail(str(exc))
    if sandbox:
        sandbox_mode.start_sandboxes("127.0.0.1", sandbox_port, settings.public_url)
    if said:
        typer.echo(said)
    if settings.public_url_given and settings.public_url != settings.served_url:
        typer.echo(
            f"Serving on {settings.served_url}; connect links and the OAuth redirect_uri use "
            f"KEYGATE_PUBLIC_URL={settings.public_url}."
        )
    # Workers read the same environment: the address served (so their public URL agrees), and a
    # current schema, so they skip migrating.
    os.environ["KEYGATE_HOST"] = settings.host
    os.environ["KEYGATE_PORT"] = str(settings.port)
    os.environ["KEYGATE_MIGRATE_ON_START"] = "false"
    # One metrics directory for this server's workers, so /metrics sums them all: a fresh one,
    # or the operator's PROMETHEUS_MULTIPROC_DIR emptied of an earlier server's files. Set
    # here, after migrating, so this process (alive as long as its workers) counts nothing in it.
    metrics_dir = settings.metrics_dir or Path(tempfile.mkdtemp(prefix="keygate-metrics-"))
    prepare_directory(metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    server = Granian(
        "keygate.asgi:granian_target",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        log_dictconfig=logging_config(settings.log_format, settings.log_level),
        backlog=2048,
        backpressure=settings.max_concurrent_requests,
        # HTTP/1.1 only: in granian's "auto" mode a connection is first sniffed for the HTTP/2
        # preface with no timeout, so one that never sends a byte is never closed; hyper's
        # HTTP/1 header timer starts at accept and again after each response.
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(settings.header_read_timeout * 1000))
        ),
    )
    try:
        server.serve()
    finally:
        if settings.metrics_dir is None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Klaviyo sandbox port; Constant Contact is port+1.")
    ] = 9010,
    empty: Annotated[
        bool, typer.Option("--empty", help="Start without the demo data (profiles, contacts…).")
    ] = False,
) -> None:
    """Run the Klaviyo and Constant Contact stand-ins on loopback."""
    from keygate.sandbox.config import SandboxConfig
    from keygate.sandbox.registry import sandbox_ports
    from keygate.sandbox.runner import serve_sandboxes

    where = ", ".join(f"{app} on http://{host}:{p}" for app, p in sandbox_ports(port).items())
    typer.echo(f"Sandboxes: {where}" + ("" if empty else " (with demo data)"))
    serve_sandboxes(host, port, lambda _app, _port: SandboxConfig(seed_data=not empty))


def main() -> None:
    """Console-script entry point."""
    app()
