"""Rendering dashboard pages: templates, their headers (a strict policy, never cached), and
the small formatting filters the templates share."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from keygate.dashboard.guard import Viewer

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
"""Everything from this origin only: no inline script or style, no framing."""


def page_headers() -> dict[str, str]:
    """Headers of every dashboard response."""
    return {
        "Content-Security-Policy": POLICY,
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        # A polled fragment and its whole page share a URL: caches must tell them apart.
        "Vary": "HX-Request, Cookie",
    }


def when(moment: datetime | None) -> str:
    """A time as a person reads it, in UTC; an em dash when there is none."""
    if moment is None:
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def when_seconds(moment: datetime | None) -> str:
    """A time to the second, in UTC (for the record, where several share a minute)."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(moment: datetime | None) -> str:
    """A time for a `<time datetime>` attribute."""
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


templates.env.filters["when"] = when
templates.env.filters["when_seconds"] = when_seconds
templates.env.filters["iso"] = iso_time


def page(
    request: Request,
    name: str,
    viewer: Viewer | None,
    context: dict[str, Any] | None = None,
    status: int = 200,
    section: str = "",
) -> HTMLResponse:
    """A whole page, or (for an htmx request) a fragment template, with the viewer's CSRF
    token and workspace in its context."""
    values: dict[str, Any] = {
        "viewer": viewer,
        "csrf": viewer.csrf if viewer else "",
        "section": section,
        **(context or {}),
    }
    return templates.TemplateResponse(
        request, name, values, status_code=status, headers=page_headers()
    )
