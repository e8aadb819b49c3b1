"""Templates in catalog files: `{name}` placeholders in URLs, headers and injections.

A URL template names connection parameters and captured values (`https://{subdomain}.zendesk.com`,
`{instance_url}/services/data`). It is checked at start-up by rendering it with stand-in values
and parsing the result, and rendered per connection once per credential version, never per
request.

A rendered value can never change the structure of a URL beyond what its template allows: a
parameter's value is checked against its pattern and `SAFE_VALUE` when it is given, and again
here; a captured value against its pattern when it is captured, and here for characters no URL
or header may carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from string import Formatter
from urllib.parse import urlsplit

from pydantic import HttpUrl, TypeAdapter, ValidationError

_FORMATTER = Formatter()
_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)

SAFE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{1,255}$")
"""What any connection parameter's value is made of (RFC 3986 unreserved characters): nothing
that could end a host, start a path, a query or userinfo (`/`, `?`, `#`, `@`, `:`)."""

_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
"""Characters no rendered value may hold: controls, space (header splitting, URL breaking)."""


class TemplateValueMissing(KeyError):
    """A template names a value the connection does not have (the message names it)."""


def placeholders(template: str) -> list[str]:
    """The field names a template references; ValueError if it is not a plain `{field}` one."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(
                f"template {template!r}: placeholders are plain field names, e.g. {{api_key}}"
            )
        names.append(name)
    return names


def literal_text(template: str) -> str:
    """The text of a template outside its placeholders (malformed templates: all of it)."""
    try:
        return "".join(literal for literal, *_ in _FORMATTER.parse(template))
    except ValueError:
        return template


def check_names(where: str, template: str, known: Iterable[str], what: str) -> None:
    """ValueError naming `where` if a placeholder of `template` is not one of `known`."""
    allowed = sorted(set(known))
    for name in placeholders(template):
        if name not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            raise ValueError(
                f"{where}: placeholder {{{name}}} names no {what} (known here: {listed})"
            )


def check_url_template(value: str) -> str:
    """A URL template is valid if it renders, with stand-in values, to an http(s) URL whose
    host its literal text fixes (or that a leading `{origin}` placeholder gives whole)."""
    names = placeholders(value)
    stand_in = {name: "x" for name in names}
    if names and value.startswith("{"):
        # `{instance_url}/services/data`: the captured value is a whole origin.
        stand_in[names[0]] = "https://x.example"
    rendered = value.format_map(stand_in)
    try:
        _HTTP_URL.validate_python(rendered)
    except ValidationError as exc:
        raise ValueError(f"{value!r} is not an http(s) URL: {exc.errors()[0]['msg']}") from None
    parts = urlsplit(rendered)
    if parts.fragment:
        raise ValueError(f"{value!r} may not carry a fragment")
    return value


def fill(template: str, values: Mapping[str, str]) -> str:
    """The template with its placeholders replaced; TemplateValueMissing names a missing one."""
    try:
        return template.format_map(values)
    except KeyError as exc:
        raise TemplateValueMissing(str(exc.args[0])) from None


def render_url(template: str, values: Mapping[str, str], sandbox_origin: str | None = None) -> str:
    """A URL template filled in for one connection.

    Each value it uses must be free of characters that break a URL (`_UNSAFE`); a value put in
    the host (a parameter) must be `SAFE_VALUE`, so the host keeps the shape the template gives
    it. `sandbox_origin`, when set, sends the URL to that origin with its host as the first path
    segment (`https://acme.zendesk.com/api` → `{origin}/acme.zendesk.com/api`): how the generic
    provider sandbox sees which host Keygate meant.
    """
    names = placeholders(template)
    for name in names:
        value = values.get(name)
        if value is None:
            raise TemplateValueMissing(name)
        if _UNSAFE.search(value):
            raise ValueError(f"the value of {{{name}}} holds a control character or space")
    authority_end = _authority_end(template)
    for name in placeholders(template[:authority_end]):
        if template.startswith("{" + name + "}"):
            continue  # a whole captured origin, checked by its pattern when captured
        if not SAFE_VALUE.match(values[name]):
            raise ValueError(f"the value of {{{name}}} cannot go into a host")
    url = fill(template, values)
    if sandbox_origin is None:
        return url
    parts = urlsplit(url)
    rebased = f"{sandbox_origin.rstrip('/')}/{parts.netloc}{parts.path}"
    return f"{rebased}?{parts.query}" if parts.query else rebased


def _authority_end(template: str) -> int:
    """Where the scheme and authority of a URL template end (the start of its path)."""
    start = template.find("://")
    start = 0 if start < 0 else start + 3
    end = template.find("/", start)
    return len(template) if end < 0 else end


def unsafe_in_header(value: str) -> bool:
    """Whether a value cannot go into a header (line breaks, NUL)."""
    return any(c in value for c in "\r\n\0")
