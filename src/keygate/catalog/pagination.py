"""Following an app's next-page links through the gateway, from plain values.

Kept free of the catalog model (and of pydantic) so the SDK and the CLI can import it cheaply:
both learn an app's `pagination` from `GET /apps/{app}` and pass its fields here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def dig(body: Any, dotted: str) -> Any:
    """The value at a dotted path of a parsed JSON body, or None where the path ends early."""
    value = body
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def next_link(body: Any, next_path: str) -> str | None:
    """The next page's link in a response body, or None on the last page."""
    link = dig(body, next_path)
    return link if isinstance(link, str) and link else None


def gateway_path(app: str, link: str, link_kind: str, base_url: str) -> str:
    """The gateway path (`/{app}/…?…`) that fetches the page a next link points at.

    An absolute link keeps only its path and query: the gateway, not the link's host, decides
    where the call goes (a link naming another host must not redirect a credential). A relative
    link is resolved against the root of the app's `base_url`. The base URL's own path prefix,
    if any, is stripped, since gateway paths are relative to `base_url`.
    """
    if link_kind == "absolute":
        parts = urlsplit(link)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = link.partition("?")
        if not path.startswith("/"):
            path = "/" + path
    prefix = urlsplit(base_url).path.rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    return f"/{app}{path}" + (f"?{query}" if query else "")
