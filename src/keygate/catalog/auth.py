"""A credential applied to an outgoing request as a catalog method's `inject` entries say.

As with httpx's Auth objects, the credential becomes one small object that applies itself to a
request. It is rendered once per credential version (templates filled in, HTTP Basic encoded,
query values percent-encoded) so that applying it per request is cheap: the header tuple is
precomputed, the caller's copies of injected names are found by a set lookup, and an injected
query parameter is a precomputed suffix.

The gateway (every request and its 401 replay) and the connect page's key check both use it, so
what a provider receives is the same on both paths.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

from keygate.catalog.model import ApiKeyMethod, OAuth2Method

_UNSAFE_IN_HEADER = ("\r", "\n", "\0")


class CredentialDoesNotFit(Exception):
    """A credential cannot be injected as the catalog says: it lacks a field the templates
    name (the catalog changed since it was stored), or a value cannot go into a header.

    The message names the field, never its value.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r} {reason}")
        self.field = field


@dataclass(frozen=True, slots=True, repr=False)
class CredentialAuth:
    """One credential version, rendered: what it adds to a request and which caller-sent names
    it replaces."""

    headers: tuple[tuple[str, str], ...]
    """The injected headers, (name, value), in catalog order."""
    query: str
    """The injected query parameters, percent-encoded (`name=value&…`); empty if none."""
    drop: frozenset[bytes]
    """Lower-case names of injected headers a caller's request could carry (the gateway never
    forwards a caller's Authorization, so it is not listed: the common case checks nothing)."""
    header_names: frozenset[str]
    """Lower-case names of every injected header."""
    query_names: frozenset[str]
    """Decoded, lower-case names of the injected query parameters."""

    def __repr__(self) -> str:
        # Names only: the values are the secret.
        return (
            f"CredentialAuth(headers={sorted(self.header_names)}, query={sorted(self.query_names)})"
        )

    def without_injected(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """`headers` less every one whose name the injection sets: a caller may neither add a
        value beside the secret nor replace it."""
        names = self.header_names
        return [item for item in headers if item[0].lower() not in names]

    def url(self, url: str) -> str:
        """`url` with the caller's parameters of an injected name dropped (compared decoded and
        case-insensitively, as upstreams differ) and the injected ones appended."""
        if not self.query:
            return url
        base, _, caller = url.partition("?")
        kept = [
            pair
            for pair in caller.split("&")
            if pair and unquote_plus(pair.partition("=")[0]).lower() not in self.query_names
        ]
        kept.append(self.query)
        return base + "?" + "&".join(kept)


def render_auth(method: OAuth2Method | ApiKeyMethod, values: Mapping[str, str]) -> CredentialAuth:
    """Fill in the method's injection templates with a credential's plain values;
    CredentialDoesNotFit if a field is missing or a header value would be unsafe."""
    if isinstance(method, OAuth2Method) and "token_type" not in values:
        values = {**values, "token_type": "Bearer"}  # token sets stored before token_type was
    headers: list[tuple[str, str]] = []
    query: list[str] = []
    for entry in method.inject:
        if entry.basic is not None:
            # RFC 7617 §2: user-id ':' password, UTF-8, base64.
            pair = f"{_fill(entry.basic.username, values)}:{_fill(entry.basic.password, values)}"
            headers.append(("Authorization", "Basic " + base64.b64encode(pair.encode()).decode()))
        elif entry.header is not None:
            headers.append((entry.header, _fill(entry.template or "", values, header=True)))
        else:
            name = quote(entry.query or "", safe="")
            query.append(f"{name}={quote(_fill(entry.template or '', values), safe='')}")
    names = frozenset(name.lower() for name, _ in headers)
    return CredentialAuth(
        headers=tuple(headers),
        query="&".join(query),
        drop=frozenset(name.encode("latin-1") for name in names) - {b"authorization"},
        header_names=names,
        query_names=frozenset(
            (entry.query or "").lower() for entry in method.inject if entry.query is not None
        ),
    )


def _fill(template: str, values: Mapping[str, str], *, header: bool = False) -> str:
    try:
        text = template.format_map(values)
    except KeyError as exc:
        raise CredentialDoesNotFit(str(exc.args[0]), "is not in the stored credential") from None
    if header and any(c in text for c in _UNSAFE_IN_HEADER):
        field = next(
            (name for name, value in values.items() if any(c in value for c in _UNSAFE_IN_HEADER)),
            "?",
        )
        raise CredentialDoesNotFit(field, "holds a line break or NUL, which a header cannot carry")
    return text
