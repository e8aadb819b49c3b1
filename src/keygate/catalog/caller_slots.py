"""Where an app's own SDK puts its credential, so a caller may put its Keygate key there instead.

An official SDK pointed at Keygate sends its credential where the provider expects it: the
Klaviyo SDK in API-key mode sends `Authorization: Klaviyo-API-Key <key>`. Keygate accepts its own
key in that slot, as the catalog's `inject` entries declare it (the place Keygate itself puts the
upstream credential), so such an SDK works with only its host and credential changed.

A slot is derived from an `inject` entry whose template is a literal prefix followed by one
placeholder (`Klaviyo-API-Key {api_key}`, `{api_key}`): the caller's value must start with that
prefix, and the rest is taken as the Keygate key. `Authorization: Bearer …` is not a slot: it is
how every caller sends its key already. HTTP Basic entries are not slots.
"""

from __future__ import annotations

from string import Formatter
from typing import NamedTuple

from keygate.catalog.model import AppSpec, Injection


class CallerSlot(NamedTuple):
    """One place a caller may present its Keygate key: a header or a query parameter."""

    header: bytes | None
    """Lower-case header name, or None for a query parameter."""
    query: str | None
    """Lower-case query parameter name, or None for a header."""
    prefix: bytes
    """What the value starts with before the key (`Klaviyo-API-Key `), maybe empty."""


def _prefix(template: str) -> str | None:
    """The literal before the template's one trailing placeholder, or None if it has another
    shape (several placeholders, text after the placeholder, a format spec)."""
    try:
        parts = list(Formatter().parse(template))
    except ValueError:
        return None
    if len(parts) != 1:
        return None
    literal, field, spec, conversion = parts[0]
    if not field or spec or conversion:
        return None
    return literal


def _slot(entry: Injection) -> CallerSlot | None:
    prefix = _prefix(entry.template or "")
    if prefix is None:
        return None
    if entry.query is not None:
        return CallerSlot(None, entry.query.lower(), prefix.encode())
    if entry.header is None:
        return None  # HTTP Basic
    name = entry.header.lower()
    if name == "authorization" and prefix.lower() in ("", "bearer "):
        # Bearer is how every caller sends its key; a bare Authorization value is not a slot.
        return None
    return CallerSlot(name.encode("latin-1"), None, prefix.encode("latin-1"))


def caller_slots(spec: AppSpec) -> tuple[CallerSlot, ...]:
    """The app's native credential slots, in catalog order, each once."""
    slots: dict[CallerSlot, None] = {}
    for method in spec.methods:
        for entry in method.inject:
            slot = _slot(entry)
            if slot is not None:
                slots[slot] = None
    return tuple(slots)
