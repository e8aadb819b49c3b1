"""What the control plane returns, as small typed objects (the raw JSON is kept beside)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ConnectionStatus = Literal["PENDING", "ACTIVE", "FAILED"]
"""The statuses `connections.wait` can wait for."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A connection as `GET /connections/{id}` shows it."""

    connection_id: str
    status: str
    """`PENDING`, `ACTIVE`, `FAILED`, or `DELETED` (the answer to a delete)."""
    app: str
    method: str
    creation_time: str
    last_updated_time: str
    url: str | None = None
    """The connect link a person opens (PENDING and FAILED connections, and re-authorizing)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    """`{"code", "message"}` of a FAILED connection."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The connection id (the same as `connection_id`)."""
        return self.connection_id

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Connection:
        """The connection object of a control-plane answer."""
        return cls(
            connection_id=data["connection_id"],
            status=data["status"],
            app=data["app"],
            method=data["method"],
            creation_time=data.get("creation_time", ""),
            last_updated_time=data.get("last_updated_time", ""),
            url=data.get("url"),
            metadata=dict(data.get("metadata") or {}),
            error=data.get("error"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Pagination:
    """How an app's list answers point at their next page (from `GET /apps/{app}`)."""

    next: str
    """Dotted path in the JSON body to the next page's link."""
    link: str
    """`absolute` (a URL) or `relative` (a path from the API root)."""
    items: str | None = None
    """Dotted path to a page's items, when every list endpoint shares it."""


@dataclass(frozen=True, slots=True)
class App:
    """An app of the catalog, as this Keygate serves it."""

    app: str
    display_name: str
    methods: list[str]
    docs_url: str
    base_url: str
    pagination: Pagination | None = None
    """Only filled by `apps.get` (the list shows the short form)."""
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    """The catalog's named endpoints (`apps.get` only)."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """The app name, as in gateway paths."""
        return self.app

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> App:
        """The app object of a catalog answer."""
        pagination = data.get("pagination")
        return cls(
            app=data["app"],
            display_name=data.get("display_name", data["app"]),
            methods=list(data.get("methods") or []),
            docs_url=data.get("docs_url", ""),
            base_url=data.get("base_url", ""),
            pagination=None
            if not pagination
            else Pagination(pagination["next"], pagination["link"], pagination.get("items")),
            endpoints=list(data.get("endpoints") or []),
            raw=data,
        )
