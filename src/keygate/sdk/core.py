"""What the sync and async clients share: settings, request building, retry decisions and the
pagination step, as plain functions over plain values (the clients only do the I/O)."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from keygate.catalog.pagination import dig, gateway_path, next_link
from keygate.sdk.errors import retry_after
from keygate.sdk.models import App
from keygate.version import __version__

DEFAULT_URL = "http://127.0.0.1:8080"
"""Where `keygate serve` listens by default."""
USER_AGENT = f"keygate-python/{__version__}"

# A request that never reached Keygate can always be sent again; one that may have (the answer
# was lost) only when its method is idempotent (RFC 9110 §9.2.2).
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({429, 503})
_BACKOFF_FIRST = 0.5


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """A client's settings, resolved once in its constructor."""

    base_url: str
    api_key: str
    timeout: httpx.Timeout
    max_retries: int
    max_retry_wait: float
    connection: str | None

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float | httpx.Timeout,
        max_retries: int,
        max_retry_wait: float,
        connection: str | None,
    ) -> ClientOptions:
        """Arguments first, then `KEYGATE_URL` / `KEYGATE_API_KEY`; ValueError if no key."""
        url = base_url or os.environ.get("KEYGATE_URL") or DEFAULT_URL
        key = api_key or os.environ.get("KEYGATE_API_KEY")
        if not key:
            raise ValueError(
                "No Keygate API key: pass api_key= or set KEYGATE_API_KEY "
                "(create one with 'keygate keys create')."
            )
        if max_retries < 0 or max_retry_wait < 0:
            raise ValueError("max_retries and max_retry_wait must not be negative")
        return cls(
            base_url=url.rstrip("/"),
            api_key=key,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            connection=connection,
        )

    def __repr__(self) -> str:
        # Never the key.
        return f"ClientOptions(base_url={self.base_url!r}, max_retries={self.max_retries})"


def build_request(
    options: ClientOptions,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    content: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    connection: str | None = None,
) -> httpx.Request:
    """The request for `path` on Keygate: key, connection choice and the caller's headers."""
    if not path.startswith("/"):
        path = "/" + path
    url = httpx.URL(options.base_url + path)
    if params:
        # Merged, not replacing: a path may carry a query of its own (a next-page link).
        url = url.copy_merge_params(params)
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    sent["Authorization"] = f"Bearer {options.api_key}"
    chosen = connection or options.connection
    if chosen:
        sent["Maton-Connection"] = chosen
    return httpx.Request(
        method.upper(),
        url,
        headers=sent,
        json=json,
        content=content,
        # Per request, so a client passed in as `http_client` keeps to these timeouts too.
        extensions={"timeout": options.timeout.as_dict()},
    )


def backoff(attempt: int, options: ClientOptions) -> float:
    """The wait before retry `attempt` (0-based) when the answer gives no Retry-After."""
    delay: float = min(options.max_retry_wait, _BACKOFF_FIRST * 2**attempt)
    return delay * (0.5 + random.random() / 2)  # jitter: concurrent clients spread out


def delay_after_status(
    response: httpx.Response, attempt: int, options: ClientOptions
) -> float | None:
    """Seconds to wait before sending again after this answer, or None to give up."""
    if response.status_code not in _RETRY_STATUSES or attempt >= options.max_retries:
        return None
    wait = retry_after(response)
    if wait is None:
        return backoff(attempt, options)
    # A longer wait than allowed is the caller's to decide: raise with retry_after set.
    return wait if wait <= options.max_retry_wait else None


def delay_after_error(
    error: httpx.TransportError, method: str, attempt: int, options: ClientOptions
) -> float | None:
    """Seconds to wait before sending again after a transport error, or None to give up."""
    if attempt >= options.max_retries:
        return None
    if isinstance(error, _NOT_SENT) or method in _IDEMPOTENT:
        return backoff(attempt, options)
    return None


def app_of(path: str) -> str:
    """The app name of a gateway path (`/klaviyo/api/profiles` → `klaviyo`)."""
    name = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    if not name:
        raise ValueError(f"{path!r} is not a gateway path: it must start with /{{app}}/")
    return name


def connection_path(connection_id: str) -> str:
    """The control-plane path of one connection (the id quoted: it is the caller's text)."""
    return "/connections/" + quote(connection_id, safe="")


def next_page(app: App, body: Any) -> str | None:
    """The gateway path of the page after `body`, or None on the last page."""
    if app.pagination is None:
        return None
    link = next_link(body, app.pagination.next)
    if link is None:
        return None
    return gateway_path(app.app, link, app.pagination.link, app.base_url)


def items_path(app: App, items: bool | str) -> str | None:
    """Where a page's items are, for `paginate(items=…)`; None to yield whole pages."""
    if items is False:
        return None
    if isinstance(items, str):
        return items
    if app.pagination is None or app.pagination.items is None:
        raise ValueError(
            f"{app.app} pages carry no common item list: pass items='<dotted path>' "
            "(for example items='contacts')."
        )
    return app.pagination.items


def page_items(body: Any, path: str) -> list[Any]:
    """The items of a page at a dotted path (none where the page has no such list)."""
    found = dig(body, path)
    return found if isinstance(found, list) else []


def require_pagination(app: App) -> None:
    """ValueError when the app's catalog declares no pagination (nothing to follow)."""
    if app.pagination is None:
        raise ValueError(f"The catalog declares no pagination for {app.app}.")
