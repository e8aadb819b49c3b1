"""A Keygate key presented in an app's native credential slot instead of `Authorization: Bearer`.

Only consulted when the caller sent no Bearer: the slots are precomputed per app at catalog load
(`ConfiguredApp.caller_slots`), so a Bearer request pays one prefix test and nothing more. A value
found in a slot is the caller's key attempt: it becomes `Bearer <value>` for the key lookup (an
unknown value is a 401 like any wrong key) and is taken out of what is forwarded, so it can never
reach the upstream.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote_plus

from keygate.catalog.caller_slots import CallerSlot


class CallerKey(NamedTuple):
    """A key found in a native slot: as an Authorization value, and the slot it came from."""

    authorization: bytes
    """`Bearer <key>`: what the key lookup and the route cache read, as for a Bearer caller."""
    slot: CallerSlot


def has_bearer(authorization: bytes | None) -> bool:
    """Whether an Authorization value is a Bearer credential (the scheme is case-insensitive)."""
    return authorization is not None and authorization[:7].lower() == b"bearer "


def find_caller_key(
    slots: tuple[CallerSlot, ...],
    authorization: bytes | None,
    headers: list[tuple[bytes, bytes]],
    query: bytes,
) -> CallerKey | None:
    """The first slot, in catalog order, that holds a value with its prefix."""
    for slot in slots:
        if slot.header is None:
            value = _query_value(query, slot.query or "")
            if value is None or not value.startswith(slot.prefix):
                continue
        elif slot.header == b"authorization":
            value = authorization
            if value is None or not value.startswith(slot.prefix):
                continue
        else:
            value = next((v for n, v in headers if n == slot.header), None)
            if value is None or not value.startswith(slot.prefix):
                continue
        return CallerKey(b"Bearer " + value[len(slot.prefix) :].strip(), slot)
    return None


def without_slot_header(
    forward: list[tuple[str, str]], names: set[bytes], header: bytes
) -> list[tuple[str, str]]:
    """The caller's headers less every copy of the slot's header (ASGI names are lower-case)."""
    names.discard(header)
    name = header.decode("latin-1")
    return [item for item in forward if item[0] != name]


def without_query_param(query: bytes, name: str) -> bytes:
    """The query less every parameter named `name` (compared decoded and case-insensitively, as
    the injected ones are)."""
    kept = [pair for pair in query.split(b"&") if pair and _name_of(pair) != name]
    return b"&".join(kept)


def _name_of(pair: bytes) -> str:
    return unquote_plus(pair.partition(b"=")[0].decode("latin-1")).lower()


def _query_value(query: bytes, name: str) -> bytes | None:
    if not query:
        return None
    for pair in query.split(b"&"):
        if pair and _name_of(pair) == name:
            return unquote_plus(pair.partition(b"=")[2].decode("latin-1")).encode("latin-1")
    return None
