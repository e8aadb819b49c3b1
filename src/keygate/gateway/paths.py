"""Splitting `/{app}/{native-path}` and refusing any native path that could leave the upstream.

The upstream URL is built by concatenating the app's base URL with the raw, still-encoded path,
so only what a URL parser or the upstream would *normalise* can move a request elsewhere: dot
segments (plain or encoded), encoded slashes and backslashes, empty segments (`//host`), userinfo
(`@`), and control or non-ASCII bytes. All of those are refused.
"""

from __future__ import annotations

import re

from keygate.errors import InvalidPath

# One scan for everything refused: control, space, DEL and non-ASCII bytes, '\\', '@', '#',
# an empty segment, and percent-escapes that decode to '/', '\\', '.', '@' or a control byte.
_UNSAFE_PATH = re.compile(
    rb"[\x00-\x20\x7f-\xff\\@#]|//|%(?:2[fFeE]|5[cC]|40|[01][0-9a-fA-F]|7[fF])"
)
_UNSAFE_QUERY = re.compile(rb"[\x00-\x20\x7f-\xff#]")
# Bytes the pooled upstream client's URL parser percent-encodes (the WHATWG path and special-query
# percent-encode sets): a path or query holding one goes by the exact client (`gateway/exact.py`).
_REWRITTEN_PATH = re.compile(rb'["<>`{}]')
# The query's unsafe and rewritten bytes in one scan, so a plain query costs a single search.
_SPECIAL_QUERY = re.compile(rb"[\x00-\x20\x7f-\xff#\"'<>]")
_PATH_MESSAGE = (
    "The path after the app name must be a plain API path: no '..' or '.' segments, encoded "
    "slashes or dots, '@', backslashes, empty segments, absolute URLs or control characters."
)


# The common case: segments of unreserved and sub-delim characters only (no '%', no empty
# segment, none starting with '.', so no dot segment either). Checked with `bytes.translate`
# (deleting these bytes must leave nothing) and two substring tests: a third of a regex match.
_PLAIN_BYTES = b"/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~!$&'()*+,;=:-"


def split_app(raw_path: bytes) -> tuple[str, bytes, bool]:
    """The first path segment (the app), the rest (still percent-encoded), and whether the rest
    is already known to be safe (else it needs `check_native_path`)."""
    end = raw_path.find(b"/", 1)
    if end == -1:
        return raw_path[1:].decode("latin-1"), b"/", True
    native = raw_path[end:]
    plain = not native.translate(None, _PLAIN_BYTES) and b"//" not in native
    return raw_path[1:end].decode("latin-1"), native, plain and b"/." not in native


def check_native_path(native: bytes) -> bytes:
    """Return the native path if it is safe to append to the upstream base URL, else raise."""
    if not native:
        return b"/"
    if _UNSAFE_PATH.search(native):
        raise InvalidPath(_PATH_MESSAGE)
    if b"/." in native:
        for segment in native.split(b"/"):
            if segment in (b".", b".."):
                raise InvalidPath(_PATH_MESSAGE)
    return native


def check_query(query: bytes) -> bool:
    """Refuse a query holding control, space, non-ASCII or fragment bytes; say whether it holds
    bytes the pooled upstream client would rewrite (the exact client then sends it)."""
    if not _SPECIAL_QUERY.search(query):
        return False
    if _UNSAFE_QUERY.search(query):
        raise InvalidPath(
            "The query string may not contain control characters, spaces, non-ASCII bytes or "
            "'#'; percent-encode them."
        )
    return True


def client_rewrites_path(native: bytes) -> bool:
    """Whether a (checked) native path holds bytes the pooled upstream client would rewrite."""
    return _REWRITTEN_PATH.search(native) is not None
