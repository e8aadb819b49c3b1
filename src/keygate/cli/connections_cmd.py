"""`keygate connections`: the control plane from the shell (operator view, per workspace)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Any

import typer

from keygate.catalog.model import Method
from keygate.cli.context import run, workspace
from keygate.cli.output import emit_fields, emit_json, emit_table, fail
from keygate.control.views import connection_view
from keygate.errors import ConfigurationError
from keygate.oauth.revoke import revoke_connection
from keygate.runtime import Runtime
from keygate.store.connections import ConnectionFilter
from keygate.store.events import OPERATOR
from keygate.store.records import Status
from keygate.store.schema import utcnow

app = typer.Typer(help="Connections (the control plane from the shell).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WorkspaceOpt = Annotated[
    str | None, typer.Option("--workspace", help="Workspace name (default: the first).")
]


def _view(rt: Runtime, record: Any, deleted: bool = False) -> dict[str, Any]:
    return connection_view(record, rt.settings.public_url, rt.cipher, deleted=deleted)


def _print_one(view: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json({"connection": view})
        return
    emit_fields(view)


@app.command("list")
def list_connections(
    workspace_name: WorkspaceOpt = None,
    app_name: Annotated[str | None, typer.Option("--app", help="Only this app.")] = None,
    status: Annotated[str | None, typer.Option(help="PENDING, ACTIVE or FAILED.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    json_out: JsonOpt = False,
) -> None:
    """List a workspace's connections, oldest first."""
    try:
        status_filter = Status(status) if status else None
    except ValueError:
        fail("--status must be PENDING, ACTIVE or FAILED")

    async def _list(rt: Runtime) -> list[dict[str, Any]]:
        ws = await workspace(rt, workspace_name)
        rows, _ = await rt.connections.list(ws.id, ConnectionFilter(app_name, status_filter), limit)
        return [_view(rt, r) for r in rows]

    views = run(_list)
    if json_out:
        emit_json({"connections": views})
        return
    columns = ["connection_id", "app", "method", "status", "creation_time"]
    rows = [[v[c] for c in columns] for v in views]
    emit_table("Connections", columns, rows, whole={"connection_id"})


@app.command("create")
def create(
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    method: Annotated[str | None, typer.Option(help="OAUTH2, API_KEY or BASIC.")] = None,
    device: Annotated[
        bool,
        typer.Option(
            "--device",
            help="Authorize here with the device flow: show a code to enter in any browser, "
            "then wait until it is approved (for headless servers).",
        ),
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUE",
            help="A connection parameter (repeatable), e.g. --param subdomain=acme; those "
            "left out take their default or are asked on the connect page.",
        ),
    ] = None,
    workspace_name: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a PENDING connection and print its connect url (or authorize it with --device)."""
    from keygate.connect.device_flow import DeviceFlowFailed, authorize_device
    from keygate.oauth.device import DeviceAuthorization

    def show_code(grant: DeviceAuthorization) -> None:
        # With --json, stdout carries only the final JSON; the person reads stderr.
        typer.echo(
            f"To authorize {app_name}, open {grant.verification_uri} and enter the code: "
            f"{grant.user_code}",
            err=json_out,
        )
        if grant.verification_uri_complete:
            typer.echo(f"(or open {grant.verification_uri_complete})", err=json_out)
        minutes = max(1, grant.expires_in // 60)
        typer.echo(
            f"Waiting for approval (checking every {grant.interval} s, "
            f"the code expires in {minutes} min)...",
            err=json_out,
        )

    given: dict[str, str] = {}
    for pair in param or []:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            fail(f"--param {pair!r}: write NAME=VALUE, e.g. --param subdomain=acme")
        given[name] = value

    async def _create(rt: Runtime) -> tuple[dict[str, Any], str | None]:
        ws = await workspace(rt, workspace_name)
        configured = rt.apps.get(app_name)
        if configured is None:
            raise ConfigurationError(f"unknown app {app_name!r}")
        try:
            chosen = Method(method) if method else configured.spec.methods[0].type
        except ValueError:
            raise ConfigurationError("--method must be OAUTH2, API_KEY or BASIC") from None
        spec_method = configured.spec.method(chosen)
        if spec_method is None:
            raise ConfigurationError(f"{app_name} does not support {chosen.value}")
        try:
            params = configured.spec.connection_params(spec_method, given)
        except ValueError as exc:
            raise ConfigurationError(f"--param {exc}") from None
        if device:
            oauth = configured.oauth()
            if chosen is not Method.OAUTH2 or oauth is None:
                raise ConfigurationError("--device needs an OAUTH2 connection")
            if oauth.device_authorization_url is None:
                raise ConfigurationError(f"{app_name} has no device authorization endpoint")
            if not configured.client_id:
                raise ConfigurationError(
                    f"no OAuth client for {app_name}; run: keygate apps configure {app_name} "
                    "--client-id … --client-secret …"
                )
            # No connect page asks for them on the device flow.
            missing = [
                p.name for p in configured.spec.params_for(spec_method) if p.name not in params
            ]
            if missing:
                raise ConfigurationError(
                    f"--device needs every connection parameter: --param {missing[0]}=…"
                )
        record = await rt.connections.create(
            ws.id, app_name, chosen.value, {}, None, params, actor=OPERATOR
        )
        if not device:
            return _view(rt, record), None
        if not json_out:
            typer.echo(f"Created {record.id} (PENDING).")
        try:
            record = await authorize_device(
                record,
                rt.apps.get(record.app),
                show_code,
                connections=rt.connections,
                client=rt.upstream,
            )
        except DeviceFlowFailed as failed:
            latest = await rt.connections.get(record.id)
            return _view(rt, latest or record), str(failed)
        return _view(rt, record), None

    view, failure = run(_create)
    if json_out:
        emit_json({"connection": view})
    if failure is not None:
        fail(f"{view['connection_id']} was not authorized: {failure}")
    if json_out:
        return
    if device:
        typer.echo(f"Connected: {view['connection_id']} ({app_name}) is ACTIVE.")
        return
    typer.echo(f"Created {view['connection_id']} (PENDING). Open this link to authorize it:")
    typer.echo(view["url"])


@app.command("show")
def show(connection_id: str, json_out: JsonOpt = False) -> None:
    """Show one connection."""

    async def _show(rt: Runtime) -> dict[str, Any] | None:
        record = await rt.connections.get(connection_id)
        return _view(rt, record) if record else None

    view = run(_show)
    if view is None:
        fail(f"no connection {connection_id}")
    _print_one(view, json_out)


@app.command("delete")
def delete(connection_id: str, json_out: JsonOpt = False) -> None:
    """Revoke upstream tokens (best effort) and delete the connection."""

    async def _delete(rt: Runtime) -> dict[str, Any] | None:
        record = await rt.connections.get(connection_id)
        if record is None:
            return None
        await revoke_connection(
            record, rt.apps.get(record.app), connections=rt.connections, client=rt.upstream
        )
        await rt.connections.delete(record.id, actor=OPERATOR)
        return _view(rt, record, deleted=True)

    view = run(_delete)
    if view is None:
        fail(f"no connection {connection_id}")
    _print_one(view, json_out)


def _from_stdin(value: str | None) -> str | None:
    return sys.stdin.readline().strip() if value == "-" else value


@app.command("import")
def import_tokens(
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    access_token: Annotated[str, typer.Option(help="Access token ('-' reads stdin).")],
    refresh_token: Annotated[str | None, typer.Option(help="Refresh token.")] = None,
    expires_in: Annotated[
        int | None, typer.Option(help="Seconds until the access token expires.")
    ] = None,
    workspace_name: WorkspaceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Make an ACTIVE OAuth connection from an existing token set (for migrations)."""
    token = _from_stdin(access_token)
    if not token:
        fail("--access-token is empty")

    async def _import(rt: Runtime) -> dict[str, Any]:
        ws = await workspace(rt, workspace_name)
        configured = rt.apps.get(app_name)
        if configured is None or configured.oauth() is None:
            raise ConfigurationError(f"{app_name!r} is not an OAuth app in the catalog")
        record = await rt.connections.create(
            ws.id, app_name, Method.OAUTH2.value, {}, actor=OPERATOR
        )
        values = {"access_token": token, "token_type": "Bearer"}
        if refresh_token:
            values["refresh_token"] = refresh_token
        expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
        active = await rt.connections.activate(record.id, values, expires_at, actor=OPERATOR)
        assert active is not None
        return _view(rt, active)

    view = run(_import)
    if json_out:
        emit_json({"connection": view})
        return
    typer.echo(f"Imported {view['connection_id']} ({app_name}, ACTIVE).")
