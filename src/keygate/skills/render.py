"""Rendering a skill: the catalog entry made into the few facts a template shows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

import jinja2

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import Endpoint

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
GENERAL_SKILL = "keygate"
"""The folder name of the skill that lists every app."""


@cache
def _environment() -> jinja2.Environment:
    # Markdown, not HTML: escaping would corrupt code blocks (`&`, `<`, quotes).
    return jinja2.Environment(
        loader=jinja2.PackageLoader("keygate.skills", "templates"),
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True, slots=True)
class Call:
    """One example call through the gateway: method, gateway path (with query), JSON body."""

    endpoint: Endpoint
    path: str
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """The example of following pages: the first call, and where links and items are."""

    first: Call
    next_expr: str
    items_expr: str
    link: str
    prefix: str


def _dig_expr(dotted: str) -> str:
    """Python that reads a dotted path of a parsed body named `page`, None where it ends."""
    parts = dotted.split(".")
    chain = "".join(f".get({json.dumps(part)}, {{}})" for part in parts[:-1])
    return f"page{chain}.get({json.dumps(parts[-1])})"


def _page_size_query(endpoint: Endpoint) -> str:
    """The endpoint's integer query parameters that carry an example (its page size)."""
    pairs = [
        f"{p.name}={p.example}"
        for p in endpoint.params
        if p.location == "query" and p.type == "integer" and p.example is not None
    ]
    return ("?" + "&".join(pairs)) if pairs else ""


def _examples(app: ConfiguredApp) -> dict[str, Any]:
    """The calls a skill shows runnable: a plain read, a create, and a paged listing.

    Chosen from the catalog: the first GET without path parameters that is not paginated, the
    first POST without path parameters that has an example body, the first paginated GET
    without path parameters.
    """
    endpoints = app.spec.endpoints
    free = [e for e in endpoints if not any(p.location == "path" for p in e.params)]
    read = next((e for e in free if e.method == "GET" and not e.paginated), None)
    create = next((e for e in free if e.method == "POST" and e.body is not None), None)
    paged = next((e for e in free if e.method == "GET" and e.paginated), None)
    gateway = f"/{app.name}"
    listing = None
    pagination = app.spec.pagination
    # Without a known items path the example could not count what it fetched: left out.
    items = None
    if paged is not None and pagination is not None:
        items = paged.items or pagination.items
    if paged is not None and pagination is not None and items is not None:
        listing = Listing(
            first=Call(paged, gateway + paged.path + _page_size_query(paged)),
            next_expr=_dig_expr(pagination.next),
            items_expr=_dig_expr(items),
            link=pagination.link,
            prefix=urlsplit(app.base_url).path.rstrip("/"),
        )
    return {
        "read": None if read is None else Call(read, gateway + read.path),
        "create": None
        if create is None
        else Call(create, gateway + create.path, repr(create.body)),
        "listing": listing,
    }


def _endpoint_rows(app: ConfiguredApp, lang: Language) -> list[dict[str, str]]:
    """The endpoint table: action, method, gateway path, summary, parameters."""
    rows = []
    for endpoint in app.spec.endpoints:
        params = []
        for p in endpoint.params:
            if p.location == "path":
                continue
            params.append(f"`{p.name}`" + ("*" if p.required else ""))
        rows.append(
            {
                "name": endpoint.name,
                "method": endpoint.method,
                "path": f"/{app.name}{endpoint.path}",
                "summary": getattr(endpoint.summary, lang),
                "params": ("、" if lang == "zh" else ", ").join(params),
            }
        )
    return rows


def _front_matter_text(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(" ".join(value.split()), ensure_ascii=False)


def _app_context(app: ConfiguredApp, public_url: str, lang: Language) -> dict[str, Any]:
    spec = app.spec
    return {
        "url": public_url.rstrip("/"),
        "app": app.name,
        "display_name": spec.display_name,
        "docs_url": str(spec.docs_url),
        "methods": [m.type.value for m in spec.methods],
        # Pasted secrets the catalog checks with the provider before the connection is ACTIVE.
        "verified": [m.type.value for m in spec.methods if getattr(m, "verify", None)],
        "scopes": oauth.scopes if (oauth := app.oauth()) is not None else [],
        "default_headers": sorted(spec.default_headers.items()),
        "pagination": spec.pagination,
        "notes": spec.notes,
        "endpoints": _endpoint_rows(app, lang),
        "endpoint_count": len(spec.endpoints),
        "bodies": [
            {
                "name": e.name,
                "method": e.method,
                "path": f"/{app.name}{e.path}",
                "json": json.dumps(e.body, ensure_ascii=False),
            }
            for e in spec.endpoints
            if e.body is not None
        ],
        **_examples(app),
    }


def render_app_skill(
    app: ConfiguredApp, public_url: str, lang: Language = "en", *, link_ttl_seconds: int = 3600
) -> str:
    """The SKILL.md of one app, for the deployment at `public_url` (whose connect links last
    `link_ttl_seconds`), in `lang`."""
    template = _environment().get_template(f"app.{lang}.md.j2")
    context = _app_context(app, public_url, lang)
    context["quote"] = _front_matter_text
    context["link_minutes"] = max(1, link_ttl_seconds // 60)
    return template.render(context)


def render_general_skill(
    apps: Mapping[str, ConfiguredApp], public_url: str, lang: Language = "en"
) -> str:
    """The SKILL.md of the `keygate` skill: every app this deployment serves, in `lang`."""
    template = _environment().get_template(f"keygate.{lang}.md.j2")
    listed = [
        {
            "app": name,
            "display_name": apps[name].spec.display_name,
            "methods": apps[name].spec.method_names,
            "endpoint_count": len(apps[name].spec.endpoints),
        }
        for name in sorted(apps)
    ]
    return template.render(
        url=public_url.rstrip("/"), apps=listed, skill=GENERAL_SKILL, quote=_front_matter_text
    )
