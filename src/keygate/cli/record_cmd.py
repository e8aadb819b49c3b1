"""`keygate logs`, `keygate events` and `keygate webhooks`: the record and webhooks of the
workspace of KEYGATE_API_KEY, read over HTTP from a running Keygate (as `keygate call` does).

Imports beyond typer happen inside the commands: `keygate --help` and other commands stay fast.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import httpx

UrlOpt = Annotated[
    str | None, typer.Option(help="Keygate base URL (default: where 'keygate serve' listens).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

webhooks_app = typer.Typer(
    help="Webhook endpoints of the workspace of KEYGATE_API_KEY.", no_args_is_help=True
)


def _client(url: str | None) -> httpx.Client:
    """An HTTP client for the Keygate at `url` (or where `keygate serve` listens), sending
    KEYGATE_API_KEY."""
    import httpx

    from keygate.cli.context import load_settings
    from keygate.cli.output import fail

    settings = load_settings()
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        fail("set KEYGATE_API_KEY to a Keygate API key (keygate keys create prints one)")
    base = (url or settings.served_url).rstrip("/")
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {settings.api_key.get_secret_value()}"},
        timeout=30,
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of one request; Keygate's error message, or an unreachable server, as
    one line and exit 1."""
    import httpx

    from keygate.cli.output import fail

    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        fail(
            f"could not reach Keygate at {client.base_url} ({type(exc).__name__}); is "
            "'keygate serve' running? Set KEYGATE_PORT (and KEYGATE_HOST), or pass --url"
        )
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:
            message = response.text[:200]
        fail(f"{response.status_code}: {message}")
    return response.json()


def _query(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def logs(
    app_name: Annotated[str | None, typer.Option("--app", help="Only this app.")] = None,
    connection: Annotated[str | None, typer.Option(help="Only this connection id.")] = None,
    status: Annotated[str | None, typer.Option(help="A status class: 2xx, 4xx, 5xx…")] = None,
    since: Annotated[str | None, typer.Option(help="ISO-8601 time, e.g. 2026-12-01T10:00Z")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Requests per page.")] = 100,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new requests as they come.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks with --follow.")] = 1.0,
    url: UrlOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Print the gateway requests of the workspace of KEYGATE_API_KEY, oldest first."""
    params = _query(app=app_name, connection=connection, status=status, since=since, until=until)
    _page_through("/logs", "logs", params, limit, follow, interval, url, json_out, _log_line)


def events(
    type: Annotated[str | None, typer.Option(help="An event type: connection.created…")] = None,
    connection: Annotated[str | None, typer.Option(help="Only this connection id.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO-8601 time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Events per page.")] = 100,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events as they come.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks with --follow.")] = 1.0,
    url: UrlOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Print the audit events of the workspace of KEYGATE_API_KEY, oldest first."""
    params = _query(type=type, connection=connection, since=since)
    _page_through("/events", "events", params, limit, follow, interval, url, json_out, _event_line)


def _log_line(entry: dict[str, Any]) -> str:
    names = ",".join(entry["query_params"])
    return (
        f"{entry['time']} {entry['method']} {entry['path']}{'?' + names if names else ''} "
        f"{entry['status']} ({entry['status_source']}) {entry['latency_ms']}ms "
        f"conn={entry['connection_id'] or '-'} key={entry['api_key_prefix']} "
        f"id={entry['request_id']}"
    )


def _event_line(event: dict[str, Any]) -> str:
    details = " ".join(f"{k}={v}" for k, v in event["data"].items())
    return (
        f"{event['time']} {event['type']} by {event['actor']} "
        f"conn={event['connection_id'] or '-'} {details}".rstrip()
    )


def _page_through(
    path: str,
    field: str,
    params: dict[str, Any],
    limit: int,
    follow: bool,
    interval: float,
    url: str | None,
    json_out: bool,
    line: Any,
) -> None:
    """Print every page; with `follow`, keep asking from the last cursor until interrupted."""
    import orjson

    with _client(url) as client:
        cursor: str | None = None
        while True:
            query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            page = _call(client, "GET", path, params=query)
            for item in page[field]:
                typer.echo(orjson.dumps(item).decode() if json_out else line(item))
            if page["next_cursor"]:
                cursor = page["next_cursor"]
                continue
            if not follow:
                return
            cursor = page["resume_cursor"]  # after the last item seen
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return


@webhooks_app.command("create")
def webhooks_create(
    endpoint: Annotated[str, typer.Argument(metavar="URL", help="Where to deliver.")],
    event: Annotated[
        list[str] | None, typer.Option("--event", help="An event type (repeatable; default all).")
    ] = None,
    url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register an endpoint; its whsec_ signing secret is printed once."""
    from keygate.cli.output import emit_json

    body: dict[str, Any] = {"url": endpoint}
    if event:
        body["event_types"] = event
    with _client(url) as client:
        webhook = _call(client, "POST", "/webhooks", json=body)["webhook"]
    if json_out:
        emit_json(webhook)
        return
    typer.echo(f"Webhook {webhook['webhook_id']} for {', '.join(webhook['event_types'])}")
    typer.echo("Signing secret (shown once, store it now):")
    typer.echo(webhook["secret"])


@webhooks_app.command("list")
def webhooks_list(url: UrlOpt = None, json_out: JsonOpt = False) -> None:
    """List the workspace's endpoints."""
    from keygate.cli.output import emit_json, emit_table

    with _client(url) as client:
        found = _call(client, "GET", "/webhooks")["webhooks"]
    if json_out:
        emit_json(found)
        return
    rows = [[w["webhook_id"], w["url"], w["status"], w["event_types"]] for w in found]
    emit_table("Webhooks", ["id", "url", "status", "events"], rows, whole=("id",))


@webhooks_app.command("show")
def webhooks_show(
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show an endpoint and its recent deliveries (newest first)."""
    from keygate.cli.output import emit_fields, emit_json, emit_table

    with _client(url) as client:
        shown = _call(client, "GET", f"/webhooks/{webhook_id}")
    if json_out:
        emit_json(shown)
        return
    emit_fields(shown["webhook"])
    rows = [
        [
            d["delivery_id"],
            d["event_type"],
            d["status"],
            len(d["attempts"]),
            d["attempts"][-1]["status_code"] if d["attempts"] else None,
        ]
        for d in shown["deliveries"]
    ]
    emit_table(
        "Deliveries", ["id", "event", "status", "attempts", "last status"], rows, whole=("id",)
    )


@webhooks_app.command("delete")
def webhooks_delete(
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete an endpoint and its queued deliveries."""
    from keygate.cli.output import emit_json

    with _client(url) as client:
        deleted = _call(client, "DELETE", f"/webhooks/{webhook_id}")["webhook"]
    if json_out:
        emit_json(deleted)
        return
    typer.echo(f"Deleted webhook {deleted['webhook_id']}.")


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    delivery_id: Annotated[str, typer.Argument(metavar="DELIVERY_ID")],
    url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Send a delivery again now (the receiver sees the same webhook-id)."""
    from keygate.cli.output import emit_json

    path = f"/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
    with _client(url) as client:
        delivery = _call(client, "POST", path)["delivery"]
    if json_out:
        emit_json(delivery)
        return
    typer.echo(f"Delivery {delivery['delivery_id']} queued again.")
