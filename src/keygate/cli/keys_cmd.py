"""`keygate keys`: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from keygate.cli.context import run, workspace
from keygate.cli.output import emit_json, emit_table, fail
from keygate.control.views import iso
from keygate.runtime import Runtime
from keygate.store.records import ApiKeyRecord

app = typer.Typer(
    help="API keys (shown once at creation, stored only as hashes).", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def key_view(key: ApiKeyRecord, workspace_name: str) -> dict[str, object]:
    """A key's public facts."""
    return {
        "prefix": key.prefix,
        "workspace": workspace_name,
        "name": key.name,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at) if key.last_used_at else None,
        "revoked_at": iso(key.revoked_at) if key.revoked_at else None,
    }


@app.command("create")
def create(
    workspace_name: Annotated[
        str, typer.Option("--workspace", help="Workspace (created if missing).")
    ] = "default",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Create a key; it is printed once."""

    async def _create(rt: Runtime) -> tuple[str, ApiKeyRecord]:
        ws = await rt.keys.ensure_workspace(workspace_name)
        return await rt.keys.create_key(ws.id, name)

    key, record = run(_create)
    if json_out:
        emit_json({"key": key, **key_view(record, workspace_name)})
        return
    typer.echo(f"API key for workspace {workspace_name!r} (shown once, store it now):")
    typer.echo(key)


@app.command("list")
def list_keys(
    workspace_name: Annotated[
        str | None, typer.Option("--workspace", help="Workspace name (default: the first).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List a workspace's keys (prefixes only)."""

    async def _list(rt: Runtime) -> list[dict[str, object]]:
        # Like every operator command: one workspace, the first unless --workspace names one.
        ws = await workspace(rt, workspace_name)
        return [key_view(k, ws.name) for k in await rt.keys.list_keys(ws.id)]

    views = run(_list)
    if json_out:
        emit_json({"keys": views})
        return
    columns = ["prefix", "workspace", "name", "created_at", "last_used_at", "revoked_at"]
    emit_table("API keys", columns, [[v[c] for c in columns] for v in views], whole={"prefix"})


@app.command("revoke")
def revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, as 'keys list' shows it.")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a key by its prefix."""

    async def _revoke(rt: Runtime) -> ApiKeyRecord | None:
        return await rt.keys.revoke_key(prefix)

    record = run(_revoke)
    if record is None:
        fail(f"no key with prefix {prefix!r}")
    if json_out:
        emit_json({"prefix": record.prefix, "revoked": True})
        return
    typer.echo(f"Revoked {record.prefix}.")
