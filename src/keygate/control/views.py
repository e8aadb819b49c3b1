"""How a connection looks on the wire (the contract's connection object)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from keygate.catalog.loader import ConfiguredApp
from keygate.connect.tokens import connect_url
from keygate.crypto import Cipher
from keygate.errors import InvalidCursor
from keygate.store.records import ConnectionRecord, Status


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds and a Z, as the contract shows."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def connection_view(
    record: ConnectionRecord, public_url: str, cipher: Cipher, *, deleted: bool = False
) -> dict[str, Any]:
    """The contract's connection object; credentials never appear in it."""
    view: dict[str, Any] = {
        "connection_id": record.id,
        "status": Status.DELETED.value if deleted else record.status.value,
        "creation_time": iso(record.created_at),
        "last_updated_time": iso(record.updated_at),
        "url": None if deleted else connect_url(public_url, cipher, record.id),
        "app": record.app,
        "method": record.method,
        "metadata": record.metadata,
        "params": record.params,
    }
    if record.status is Status.FAILED and not deleted:
        view["error"] = {"code": record.error_code, "message": record.error_message}
    return view


CURSOR_PATTERN = "[A-Za-f][A-Za-z0-9_-]{9}[AEIMQUYcgkosw048]"
"""A cursor: a listing position (below 2**63) as 8 bytes, unpadded base64url.

Every string of this form decodes to a position, so any cursor the OpenAPI document allows is
one Keygate takes (a position past the end gives an empty page); nothing else is.
"""
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(seq: int) -> str:
    """An opaque cursor for the listing position after `seq`."""
    return base64.urlsafe_b64encode(seq.to_bytes(8, "big")).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for; raises InvalidCursor."""
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor
    return int.from_bytes(base64.urlsafe_b64decode(cursor + "="), "big")


def app_view(app: ConfiguredApp) -> dict[str, Any]:
    """The contract's app object, with its category and whether it can be connected by OAuth."""
    category = app.spec.category
    return {
        "app": app.name,
        "display_name": app.spec.display_name,
        "category": None if category is None else category.value,
        "methods": app.spec.method_names,
        "docs_url": str(app.spec.docs_url),
        "base_url": app.base_url,
        # An OAuth connection needs the operator's client (`keygate apps configure`).
        "oauth_client_configured": app.oauth() is not None and bool(app.client_id),
    }


def matching_apps(
    apps: Mapping[str, ConfiguredApp], q: str | None = None, category: str | None = None
) -> list[ConfiguredApp]:
    """The apps, by name, whose name, display name or category contains `q` (any case) and
    whose category is `category` (when given)."""
    needle = (q or "").strip().casefold()
    found = []
    for name in sorted(apps):
        app = apps[name]
        kind = app.spec.category.value if app.spec.category is not None else ""
        if category is not None and kind != category:
            continue
        if needle and not any(
            needle in text.casefold() for text in (name, app.spec.display_name, kind)
        ):
            continue
        found.append(app)
    return found


def app_detail_view(app: ConfiguredApp) -> dict[str, Any]:
    """The app object with its pagination, connection parameters and catalog endpoints
    (`GET /apps/{app}`)."""
    pagination = app.spec.pagination
    params = {
        method.type.value: [p.model_dump(exclude_none=True) for p in app.spec.params_for(method)]
        for method in app.spec.methods
    }
    return {
        **app_view(app),
        "params": params,
        "pagination": None if pagination is None else pagination.model_dump(),
        "endpoints": [e.model_dump(by_alias=True) for e in app.spec.endpoints],
    }
