"""A connection's substitution values: its parameters and the values captured while authorizing.

Parameters live on the connection row (not secret); captured values live in the encrypted
credential beside the tokens, so a refresh that carries them again updates them in the same
write, and every credential version renders with the values it came with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from keygate.catalog.model import ApiKeyMethod, Capture, OAuth2Method

_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


class CaptureFailed(Exception):
    """A capture the catalog declares is absent from, or malformed in, the provider's answer.

    The message names the capture and where it was looked for, never the value.
    """


def substitution_values(
    method: OAuth2Method | ApiKeyMethod,
    params: Mapping[str, str],
    credential: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What the app's URL and header templates are rendered with for one connection."""
    values = dict(params)
    if credential is not None:
        for name in method.captured_names():
            value = credential.get(name)
            if value is not None:
                values[name] = value
    return values


def dotted_value(document: Any, path: str) -> str | None:
    """The scalar at a dotted path of a JSON document (`team.id`, `0.id`), as text; None if
    there is none."""
    current = document
    for segment in path.split("."):
        if isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        elif isinstance(current, dict) and segment in current:
            current = current[segment]
        else:
            return None
    if isinstance(current, bool) or not isinstance(current, str | int | float):
        return None
    return str(current)


def _checked(capture: Capture, value: str | None, where: str) -> str:
    if value is None or value == "":
        raise CaptureFailed(f"{where} carried no {capture.path} (capture {capture.name})")
    if _UNSAFE.search(value) or not re.fullmatch(capture.pattern, value):
        raise CaptureFailed(
            f"{where} gave a {capture.path} (capture {capture.name}) that does not match the "
            "catalog's pattern"
        )
    return value


def capture_from(
    method: OAuth2Method, source: str, document: Any, *, required: bool = True
) -> dict[str, str]:
    """The captures of `source` ('token', 'callback', 'request') found in `document` (a JSON
    answer, or the callback's query as a mapping). CaptureFailed when one is missing or
    malformed, unless not `required` (a refresh answer need not repeat them): then what is
    missing is left out, and what is malformed still fails."""
    where = {
        "token": "the token response",
        "callback": "the callback",
        "request": "the capture request's answer",
    }[source]
    found: dict[str, str] = {}
    for capture in method.capture:
        if capture.source != source:
            continue
        if source == "callback":
            raw = document.get(capture.path) if isinstance(document, Mapping) else None
            value = raw if isinstance(raw, str) else None
        else:
            value = dotted_value(document, capture.path)
        if value is None and not required:
            continue
        found[capture.name] = _checked(capture, value, where)
    return found
