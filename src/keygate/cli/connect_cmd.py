"""`keygate connect`: create a connection, hand the person its link, wait for the outcome.

It talks to a running Keygate's control plane with the caller's key (`POST /connections`, then
`GET /connections/{id}` about once a second), so it works against a remote Keygate as well as a
local one, and needs nothing of the server installed. Exit status: 0 ACTIVE, 1 FAILED (or any
error), 3 still PENDING when `--timeout` ran out, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from keygate.cli.output import fail
from keygate.cli.remote import Remote, Unreachable, fail_refused, fail_unreachable, open_remote
from keygate.cli.status_line import StatusLine

POLL_SECONDS = 1.0
NOTE_EVERY_SECONDS = 30.0  # how often a pipe or a log hears that we are still waiting
TIMED_OUT = 3


@click.command(context_settings={"show_default": True})
@click.argument("app_name", metavar="APP")
@click.option("--method", help="OAUTH2, API_KEY or BASIC (default: the app's first).")
@click.option(
    "--open", "open_browser", is_flag=True, help="Also open the link in this machine's browser."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    help="Seconds to wait for the person before giving up.",
)
@click.option("--wait/--no-wait", default=True, help="Wait until ACTIVE or FAILED.")
@click.option(
    "--url", help="Keygate base URL (default: KEYGATE_URL, else where 'keygate serve' listens)."
)
@click.option(
    "--json",
    "json_out",
    is_flag=True,
    help="JSON Lines on stdout: the new connection (with its url) at once, then the connection "
    "as it ended.",
)
def connect(
    app_name: str,
    method: str | None,
    open_browser: bool,
    timeout: float,
    wait: bool,
    url: str | None,
    json_out: bool,
) -> None:
    """Create a connection, show its link, and wait until it is ACTIVE or FAILED."""
    config, remote = open_remote(url)
    request: dict[str, Any] = {"app": app_name}
    if method:
        request["method"] = method.upper()
    try:
        reply = remote.request(
            "POST",
            "/connections",
            {"Content-Type": "application/json", "Accept": "application/json"},
            json.dumps(request).encode(),
        )
        if reply.status != 201:
            fail_refused(reply, f"cannot create a {app_name} connection")
        created: dict[str, Any] = reply.json()["connection"]
        _announce(created, json_out)
        if open_browser:
            import webbrowser

            if not webbrowser.open(created["url"]):
                click.echo("Could not open a browser here: open the link yourself.", err=True)
        if not wait:
            return
        ended = _wait(remote, created, timeout)
    except Unreachable as exc:
        fail_unreachable(config, exc)
    finally:
        remote.close()
    _report(ended, json_out)


def _announce(connection: dict[str, Any], json_out: bool) -> None:
    if json_out:
        _json_line(connection)
        return
    click.echo(
        f"Created {connection['connection_id']} ({connection['app']}, {connection['method']}, "
        "PENDING). Open this link to authorize it:"
    )
    click.echo(connection["url"])


def _json_line(connection: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"connection": connection}) + "\n")
    sys.stdout.flush()


def _wait(remote: Remote, created: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Poll the connection until it leaves PENDING; give up at the deadline (exit 3)."""
    conn_id = created["connection_id"]
    status = StatusLine()
    started = time.monotonic()
    deadline = started + timeout
    if not status.tty:
        status.show(f"Waiting up to {timeout:g} s for {conn_id} to be authorized...")
    next_poll = next_note = started
    frame = 0
    unreachable: Unreachable | None = None
    try:
        while True:
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + POLL_SECONDS
                try:
                    reply, body = remote.get_json(f"/connections/{conn_id}")
                    unreachable = None
                except Unreachable as exc:
                    unreachable = exc  # a restart or a blip: keep trying until the deadline
                else:
                    if reply.status == 404:
                        status.end()
                        fail(f"{conn_id} was deleted while waiting for it")
                    if reply.status != 200 or not isinstance(body, dict):
                        status.end()
                        fail_refused(reply, f"cannot read {conn_id}")
                    current: dict[str, Any] = body["connection"]
                    if current["status"] != "PENDING":
                        status.end()
                        return current
            waited = now - started
            if now >= deadline:
                status.end()
                why = f" (Keygate unreachable: {unreachable})" if unreachable else ""
                fail(
                    f"gave up after {timeout:g} s: {conn_id} is still PENDING{why}; its link "
                    "keeps working until it expires (GET /connections/"
                    f"{conn_id} tells its status)",
                    code=TIMED_OUT,
                )
            if status.tty:
                state = "Keygate unreachable, retrying" if unreachable else "waiting"
                status.spin(frame, f"{conn_id}: {state} for authorization... {waited:.0f} s")
                frame += 1
                time.sleep(min(0.1, max(0.0, deadline - now)))
            else:
                if now >= next_note + NOTE_EVERY_SECONDS:
                    next_note = now
                    status.show(f"{conn_id}: still PENDING after {waited:.0f} s")
                time.sleep(max(0.0, min(next_poll, deadline) - time.monotonic()))
    except KeyboardInterrupt:
        status.end()
        fail(f"stopped waiting; {conn_id} is still PENDING", code=130)


def _report(connection: dict[str, Any], json_out: bool) -> None:
    if json_out:
        _json_line(connection)
    conn_id, app = connection["connection_id"], connection["app"]
    if connection["status"] == "ACTIVE":
        if not json_out:
            click.echo(f"Connected: {conn_id} ({app}) is ACTIVE.")
        return
    error = connection.get("error") or {}
    reason = error.get("message") or "authorization did not complete"
    code = f" ({error['code']})" if error.get("code") else ""
    fail(
        f"{conn_id} ({app}) is {connection['status']}: {reason}{code}; "
        f"run 'keygate connect {app}' to try again"
    )
