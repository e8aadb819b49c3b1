"""The dashboard's sign-in: a signed, expiring session token in a cookie, and CSRF tokens.

A person signs in with a Keygate API key; the cookie then carries
base64url(label | key id | workspace id | issued-at | nonce | tag), never the key. The tag is
the deployment's HMAC (`Cipher.sign`) over the whole body, label included, so neither a connect
link's token nor any other signed value can pass for a session. Each request checks the token's
age and that its API key is still unrevoked: revoking the key ends every session it opened.

CSRF tokens are tags over the session's nonce (or, before sign-in, over a nonce kept in a
short-lived cookie), so a page can only be submitted by someone who could read it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
import time
import uuid
from dataclasses import dataclass

from keygate.crypto import Cipher

SESSION_COOKIE = "keygate_ui"
SIGN_IN_COOKIE = "keygate_ui_signin"
_LABEL = b"keygate ui session v1"
_LAYOUT = struct.Struct(">16s16sQ16s")
_TAG_BYTES = 16
_CSRF_LABEL = b"keygate ui csrf v1|"
_SIGN_IN_LABEL = b"keygate ui sign-in v1|"


@dataclass(frozen=True, slots=True)
class UiSession:
    """What a valid session cookie says."""

    key_id: str
    workspace_id: str
    issued_at: int
    nonce: bytes

    def expires_at(self, ttl_seconds: int) -> float:
        """When (epoch seconds) the sign-in outlives its lifetime."""
        return float(self.issued_at + ttl_seconds)

    def expired(self, ttl_seconds: int, now: float | None = None) -> bool:
        """Whether the sign-in is older than its lifetime."""
        return (now if now is not None else time.time()) > self.expires_at(ttl_seconds)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def mint_session(cipher: Cipher, key_id: str, workspace_id: str, now: float | None = None) -> str:
    """A fresh session token for an API key of a workspace."""
    issued = int(now if now is not None else time.time())
    body = _LAYOUT.pack(
        uuid.UUID(key_id).bytes, uuid.UUID(workspace_id).bytes, issued, os.urandom(16)
    )
    return _encode(body + cipher.sign(_LABEL + body))


def parse_session(cipher: Cipher, token: str | None) -> UiSession | None:
    """The session a cookie value stands for, or None when it is missing, malformed or forged
    (expiry and the key's state are the caller's checks)."""
    if not token or len(token) > 128:
        return None
    raw = _decode(token)
    if raw is None or len(raw) != _LAYOUT.size + _TAG_BYTES:
        return None
    body, tag = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if not cipher.verify(_LABEL + body, tag):
        return None
    key, workspace, issued, nonce = _LAYOUT.unpack(body)
    return UiSession(str(uuid.UUID(bytes=key)), str(uuid.UUID(bytes=workspace)), issued, nonce)


def csrf_token(cipher: Cipher, session: UiSession) -> str:
    """The CSRF token of a session's forms."""
    return _encode(cipher.sign(_CSRF_LABEL + session.nonce))


def sign_in_nonce() -> str:
    """A random value for the sign-in form's cookie."""
    return _encode(os.urandom(16))


def sign_in_token(cipher: Cipher, nonce: str) -> str:
    """The CSRF token of the sign-in form, bound to its cookie's nonce."""
    return _encode(cipher.sign(_SIGN_IN_LABEL + nonce.encode()))


def check_csrf(cipher: Cipher, session: UiSession, given: str | None) -> bool:
    """Whether a submitted token is the session's (constant time)."""
    return bool(given) and hmac.compare_digest(csrf_token(cipher, session), given or "")


def check_sign_in(cipher: Cipher, nonce: str | None, given: str | None) -> bool:
    """Whether a sign-in form's token matches its cookie (constant time)."""
    if not nonce or not given or len(nonce) > 64:
        return False
    return hmac.compare_digest(sign_in_token(cipher, nonce), given)
