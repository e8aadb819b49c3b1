"""`keygate call`: requests through a running gateway, printing the upstream's answers.

One request prints the body as it came. `--all` follows the app's next-page links (the
`pagination` of `GET /apps/{app}`) and prints one JSON document per page, or per item with
`--items`, one per line (JSON Lines), with progress on stderr. `-i` puts the status line and the
headers before each body, as `curl -i` does. Imports stay light: an agent runs this often.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

import click

from keygate.catalog.pagination import dig, gateway_path, next_link
from keygate.cli.output import fail
from keygate.cli.remote import (
    Remote,
    Reply,
    Unreachable,
    fail_refused,
    fail_unreachable,
    open_remote,
)
from keygate.cli.status_line import StatusLine

_URL_HELP = "Keygate base URL (default: KEYGATE_URL, else where 'keygate serve' listens)."


@click.command(context_settings={"show_default": True})
@click.argument("app_name", metavar="APP")
@click.argument("method", metavar="METHOD")
@click.argument("path", metavar="PATH")
@click.option("--data", help="Request body ('@file' reads a file).")
@click.option("--header", "-H", multiple=True, help="'Name: value', repeatable.")
@click.option("--connection", help="Connection id to use.")
@click.option("--url", help=_URL_HELP)
@click.option(
    "--include", "-i", is_flag=True, help="Print the status line and headers before the body."
)
@click.option(
    "--all",
    "all_pages",
    is_flag=True,
    help="Follow the app's next-page links; one JSON document per page per line.",
)
@click.option("--items", is_flag=True, help="Print each item of the page(s) on its own line.")
@click.option(
    "--items-path",
    help="Dotted path to a page's items (default: the catalog's, e.g. data).",
)
@click.option(
    "--max-pages",
    type=click.IntRange(min=1),
    default=100,
    help="With --all: stop after this many pages.",
)
def call(
    app_name: str,
    method: str,
    path: str,
    data: str | None,
    header: tuple[str, ...],
    connection: str | None,
    url: str | None,
    include: bool,
    all_pages: bool,
    items: bool,
    items_path: str | None,
    max_pages: int,
) -> None:
    """Send METHOD /APP/PATH through the gateway with KEYGATE_API_KEY and print the answer.

    PATH is the app's native path with its query, e.g. '/api/profiles?page[size]=20'.
    """
    config, remote = open_remote(url)
    headers: dict[str, str] = {}
    for item in header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            fail(f"--header must look like 'Name: value', got {item!r}")
        headers[name.strip()] = value.strip()
    if connection:
        headers["Maton-Connection"] = connection
    body: bytes | None = None
    if data is not None:
        if data.startswith("@"):
            try:
                with open(data[1:], "rb") as handle:
                    body = handle.read()
            except OSError as exc:
                fail(f"--data {data}: {exc.strerror}")
        else:
            body = data.encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    verb = method.upper()
    first = f"/{quote(app_name, safe='')}/{path.lstrip('/')}"
    by_item = items or items_path is not None
    if (all_pages or by_item) and (verb != "GET" or body is not None):
        fail(f"--all and --items read list pages with GET and no --data, not {verb}")
    try:
        if all_pages or by_item:
            pages = _Pages(remote, app_name, headers, include)
            ok = pages.run(first, by_item, items_path, max_pages, all_pages)
        else:
            ok = _print_reply(remote.request(verb, first, headers, body), include)
    except Unreachable as exc:
        fail_unreachable(config, exc)
    finally:
        remote.close()
    if not ok:
        raise SystemExit(1)


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _head(reply: Reply) -> bytes:
    """The status line and headers, then the blank line, as `curl -i` shows them."""
    lines = [f"{reply.version} {reply.status} {reply.reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in reply.headers]
    return ("\n".join(lines) + "\n\n").encode("latin-1", errors="replace")


def _print_reply(reply: Reply, include: bool) -> bool:
    """Print one answer as it came; whether it was a success."""
    content = reply.body
    if content and not content.endswith(b"\n"):
        content += b"\n"
    _write((_head(reply) if include else b"") + content)
    return reply.status < 400


def _line(document: Any) -> bytes:
    return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _template_matches(template: str, path: str) -> bool:
    """Whether a catalog path template (`/api/lists/{id}/profiles`) matches a native path."""
    want, have = template.strip("/").split("/"), path.strip("/").split("/")
    if len(want) != len(have):
        return False
    return all(
        w == h or (w.startswith("{") and w.endswith("}") and bool(h))
        for w, h in zip(want, have, strict=True)
    )


class _Pages:
    """`call --all` / `--items`: pages fetched one after the other on one connection."""

    def __init__(self, remote: Remote, app: str, headers: dict[str, str], include: bool) -> None:
        self.remote, self.app, self.headers, self.include = remote, app, headers, include
        self.status = StatusLine()

    def _catalog(self) -> dict[str, Any]:
        reply, body = self.remote.get_json(f"/apps/{quote(self.app, safe='')}")
        if reply.status != 200 or not isinstance(body, dict):
            fail_refused(reply, f"cannot read the catalog entry of {self.app!r}")
        found: dict[str, Any] = body["app"]
        return found

    def _items_path(self, app: dict[str, Any], native: str) -> str:
        """The items path an endpoint of the catalog declares, else the app's pagination's."""
        for endpoint in app.get("endpoints") or []:
            if (
                endpoint.get("method") == "GET"
                and endpoint.get("items")
                and _template_matches(endpoint["path"], native)
            ):
                return str(endpoint["items"])
        common = (app.get("pagination") or {}).get("items")
        if not common:
            fail(
                f"the catalog names no items path for {self.app} GET {native}; "
                "name it with --items-path (e.g. --items-path contacts)"
            )
        return str(common)

    def run(
        self, first: str, by_item: bool, items_path: str | None, max_pages: int, follow: bool
    ) -> bool:
        """Fetch and print the pages; whether every page was a success."""
        app = self._catalog()
        pagination: dict[str, Any] = app.get("pagination") or {}
        if follow and not pagination:
            fail(f"the catalog gives {self.app} no pagination; --all cannot find next pages")
        native = first.split("?", 1)[0][len(self.app) + 1 :] or "/"
        if by_item and items_path is None:
            items_path = self._items_path(app, native)
        path, page, total = first, 0, 0
        while True:
            page += 1
            reply = self.remote.request("GET", path, self.headers)
            if reply.status >= 400:
                self.status.end(f"{self.app}: page {page}: HTTP {reply.status}")
                _print_reply(reply, self.include)
                return False
            try:
                document = reply.json()
            except ValueError:
                self.status.end()
                fail(f"page {page} is not JSON ({reply.header('content-type')}); --all needs JSON")
            head = _head(reply) if self.include else b""
            if by_item:
                assert items_path is not None
                found = dig(document, items_path)
                if not isinstance(found, list):
                    self.status.end()
                    fail(f"page {page} has no list at {items_path!r}; check --items-path")
                total += len(found)
                _write(head + b"".join(_line(item) for item in found))
                self.status.show(f"{self.app}: page {page}, {total} items")
            else:
                _write(head + _line(document))
                self.status.show(f"{self.app}: page {page}")
            link = next_link(document, pagination["next"]) if follow and pagination else None
            if link is None:
                counted = f", {total} items" if by_item else ""
                self.status.end(f"{self.app}: {page} page(s){counted}")
                return True
            following = gateway_path(self.app, link, pagination["link"], app["base_url"])
            if following == path:
                self.status.end()
                fail(f"page {page} links to itself ({following}); stopped")
            if page >= max_pages:
                native_next = following[len(self.app) + 1 :]
                self.status.end(
                    f"{self.app}: stopped after {page} page(s) (--max-pages); more remain: "
                    f"keygate call {self.app} GET '{native_next}' --all"
                )
                return True
            path = following
