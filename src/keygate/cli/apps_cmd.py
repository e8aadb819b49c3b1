"""`keygate apps`: the catalog as configured, and the operator's per-app settings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from keygate.catalog.loader import ConfiguredApp, configure_app
from keygate.catalog.model import Category
from keygate.cli.context import run
from keygate.cli.output import emit_fields, emit_json, emit_table, fail
from keygate.control.views import app_view, matching_apps
from keygate.runtime import Runtime

app = typer.Typer(help="The provider catalog and per-app operator settings.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def detail_view(configured: ConfiguredApp) -> dict[str, Any]:
    """Everything an operator may want to see of an app, secrets excepted."""
    view = app_view(configured)
    oauth = configured.oauth()
    view["default_headers"] = configured.spec.default_headers
    view["oauth"] = (
        {
            "authorize_url": str(oauth.authorize_url),
            "token_url": str(oauth.token_url),
            "revoke_url": str(oauth.revoke_url) if oauth.revoke_url else None,
            "device_authorization_url": (
                str(oauth.device_authorization_url) if oauth.device_authorization_url else None
            ),
            "pkce": oauth.pkce,
            "scopes": oauth.scopes,
            "client_id": configured.client_id,
            "client_secret_set": configured.client_secret is not None,
        }
        if oauth
        else None
    )
    return view


@app.command("list")
def list_apps(
    q: Annotated[
        str | None,
        typer.Option("--q", help="Only apps whose name, display name or category contains it."),
    ] = None,
    category: Annotated[
        Category | None, typer.Option(help="Only apps of this category.", case_sensitive=False)
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the apps (as GET /apps: by name, filtered by --q and --category)."""

    async def _list(rt: Runtime) -> list[dict[str, Any]]:
        found = matching_apps(rt.apps, q, None if category is None else category.value)
        return [detail_view(configured) for configured in found]

    views = run(_list)
    if json_out:
        emit_json({"apps": views})
        return
    # What fits 80 columns: the base URL and docs are in `apps show` and --json.
    rows = [
        [
            v["app"],
            v["display_name"],
            v["category"],
            " ".join(v["methods"]),
            v["oauth_client_configured"] if v["oauth"] else "-",
        ]
        for v in views
    ]
    emit_table(
        f"Apps ({len(rows)})",
        # "oauth": an OAuth client is configured (yes / no), "-" for an app without OAuth.
        ["app", "name", "category", "methods", "oauth"],
        rows,
        whole={"app", "category"},
    )


@app.command("show")
def show(
    app_name: Annotated[str, typer.Argument(metavar="APP")], json_out: JsonOpt = False
) -> None:
    """Show one app as configured."""

    async def _show(rt: Runtime) -> dict[str, Any] | None:
        configured = rt.apps.get(app_name)
        return detail_view(configured) if configured else None

    view = run(_show)
    if view is None:
        fail(f"unknown app {app_name!r}")
    if json_out:
        emit_json(view)
        return
    emit_fields(view)


def _secret_arg(value: str | None) -> str | None:
    if value == "-":
        return sys.stdin.readline().strip()
    return value


@app.command("configure")
def configure(
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    client_id: Annotated[str | None, typer.Option(help="OAuth client id.")] = None,
    client_secret: Annotated[
        str | None, typer.Option(help="OAuth client secret ('-' reads it from stdin).")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Upstream API origin ('' resets).")] = None,
    authorize_url: Annotated[str | None, typer.Option(help="OAuth authorize URL.")] = None,
    token_url: Annotated[str | None, typer.Option(help="OAuth token URL.")] = None,
    revoke_url: Annotated[str | None, typer.Option(help="OAuth revoke URL.")] = None,
    device_authorization_url: Annotated[
        str | None, typer.Option(help="OAuth device authorization URL (device flow).")
    ] = None,
    scopes: Annotated[str | None, typer.Option(help="Default scopes, space separated.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Set an app's OAuth client and URL overrides (stored; the secret encrypted)."""
    changes: dict[str, Any] = {
        "client_id": client_id,
        "client_secret": _secret_arg(client_secret),
        "base_url": base_url,
        "authorize_url": authorize_url,
        "token_url": token_url,
        "revoke_url": revoke_url,
        "device_authorization_url": device_authorization_url,
        "scopes": scopes.split() if scopes is not None else None,
    }

    async def _configure(rt: Runtime) -> dict[str, Any]:
        spec = rt.catalog.get(app_name)
        if spec is None:
            fail(f"unknown app {app_name!r}")
        stored = (await rt.app_configs.all()).get(app_name)
        # Validate the result before storing it, so a bad URL is refused, not saved.
        from keygate.catalog.loader import AppOverrides

        preview = AppOverrides(
            client_id=changes["client_id"],
            base_url=changes["base_url"] or None,
            authorize_url=changes["authorize_url"] or None,
            token_url=changes["token_url"] or None,
            revoke_url=changes["revoke_url"] or None,
            device_authorization_url=changes["device_authorization_url"] or None,
            scopes=tuple(changes["scopes"]) if changes["scopes"] is not None else None,
        ).merged_over(stored or AppOverrides())
        configure_app(spec, preview)
        await rt.app_configs.update(app_name, changes)
        await rt.reload()
        return detail_view(rt.apps[app_name])

    view = run(_configure)
    if json_out:
        emit_json(view)
        return
    typer.echo(f"Configured {app_name}.")


@app.command("validate")
def validate(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="Catalog files (YAML) to check.")
    ],
) -> None:
    """Check catalog files as start-up does: 'ok' per good file, else the file and field."""
    from keygate.catalog.loader import AppOverrides, load_app_file
    from keygate.errors import ConfigurationError

    bad = 0
    for path in files:
        try:
            if not path.is_file():
                raise ConfigurationError(f"catalog file {path}: no such file")
            # The file's own checks, then the re-validation every app gets at start-up.
            configure_app(load_app_file(path), AppOverrides())
        except ConfigurationError as exc:
            bad += 1
            typer.echo("error: " + " ".join(str(exc).split()), err=True)
        else:
            typer.echo(f"{path}: ok")
    if bad:
        raise SystemExit(1)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a catalog file (for editor completion and checks)."""
    from keygate.catalog.model import catalog_json_schema

    emit_json(catalog_json_schema())
