"""Binding an OAuth `state` to the browser that started the authorization (RFC 6749 §10.12).

`state` alone proves that a callback belongs to *some* pending authorization. The cookie set
when the person presses Continue proves that the callback arrives in the browser that started
*this* one, so a link carrying another session's `state` (a login-CSRF or a code swapped in by
someone else) is refused before anything is claimed or changed.

The cookie's name is derived from the state's hash (several tabs may authorize at once) and its
value is an HMAC of the state under the deployment's key, so it cannot be made up; neither
reveals the state.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request
from starlette.responses import Response

from keygate.crypto import Cipher
from keygate.oauth.protocol import state_digest

COOKIE_PREFIX = "kg_auth_"
CALLBACK_PATH = "/oauth/callback"


def cookie_name(state: str) -> str:
    """The cookie that binds this state: one per pending authorization."""
    return COOKIE_PREFIX + state_digest(state)[:24]


def cookie_value(cipher: Cipher, state: str) -> str:
    """The unforgeable value the binding cookie must hold for this state."""
    tag = cipher.sign(b"keygate-browser-binding:" + state.encode())
    return base64.urlsafe_b64encode(tag).decode().rstrip("=")


def bind_browser(
    response: Response, cipher: Cipher, state: str, *, secure: bool, max_age: int
) -> None:
    """Set the binding cookie on the redirect that sends the person to the provider."""
    response.set_cookie(
        cookie_name(state),
        cookie_value(cipher, state),
        max_age=max_age,
        path=CALLBACK_PATH,
        secure=secure,
        httponly=True,
        # Lax: sent on the provider's top-level redirect back to us, never on cross-site posts.
        samesite="lax",
    )


def is_bound(request: Request, cipher: Cipher, state: str) -> bool:
    """Whether this browser holds the binding cookie of this state (signed with any key the
    cipher lists: an authorization begun before a key rotation still completes)."""
    held = request.cookies.get(cookie_name(state))
    if held is None:
        return False
    try:
        tag = base64.urlsafe_b64decode(held + "=" * (-len(held) % 4))
    except (binascii.Error, ValueError):
        return False
    return cipher.verify(b"keygate-browser-binding:" + state.encode(), tag)
