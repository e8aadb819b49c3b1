"""Connect-link session tokens: self-verifying (HMAC), expiring, and single use once spent.

A token is base64url(connection uuid | issued-at | nonce | tag). Minting one needs no database
write, so every response can carry a fresh link; spending one records its nonce, which a
unique key makes single use.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
import uuid
from dataclasses import dataclass

from keygate.crypto import Cipher

_LAYOUT = struct.Struct(">16sQ8s")
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class SessionToken:
    """What a valid token says."""

    connection_id: str
    issued_at: int
    nonce: str

    def expired(self, ttl_seconds: int, now: float | None = None) -> bool:
        """Whether the token is older than the session lifetime."""
        return (now if now is not None else time.time()) > self.issued_at + ttl_seconds


class InvalidSessionToken(Exception):
    """The token is malformed or its tag does not verify."""


def mint(cipher: Cipher, connection_id: str, now: float | None = None) -> str:
    """A fresh token for a connection."""
    issued = int(now if now is not None else time.time())
    body = _LAYOUT.pack(uuid.UUID(connection_id).bytes, issued, os.urandom(8))
    return base64.urlsafe_b64encode(body + cipher.sign(body)).decode().rstrip("=")


def connect_url(public_url: str, cipher: Cipher, connection_id: str) -> str:
    """A link to the connect page with a fresh single-use session token."""
    return f"{public_url}/connect?session_token={mint(cipher, connection_id)}"


def parse(cipher: Cipher, token: str) -> SessionToken:
    """Verify and decode a token (expiry and single use are checked by the caller)."""
    if not token or len(token) > 128:
        raise InvalidSessionToken("malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidSessionToken("malformed") from exc
    if len(raw) != _LAYOUT.size + _TAG_BYTES:
        raise InvalidSessionToken("malformed")
    body, tag = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if not cipher.verify(body, tag):
        raise InvalidSessionToken("bad signature")
    conn, issued, nonce = _LAYOUT.unpack(body)
    return SessionToken(str(uuid.UUID(bytes=conn)), issued, nonce.hex())
