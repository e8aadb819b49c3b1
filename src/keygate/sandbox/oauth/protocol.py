"""Pure OAuth 2.0 protocol pieces the sandbox authorization servers share (no web code)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
"""RFC 7636 §4.1 code verifier syntax (also the exact regex Klaviyo documents)."""


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer: `error` code, description and HTTP status."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """Return the JSON body the token endpoint sends for this error."""
        answer = {"error": self.error}
        if self.description:
            answer["error_description"] = self.description
        return answer


def s256_challenge(verifier: str) -> str:
    """Return the RFC 7636 §4.2 S256 code challenge of `verifier`."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_pkce(challenge: str, verifier: str | None) -> None:
    """Check a code verifier against the stored S256 challenge or raise `OAuthError`."""
    if not verifier:
        raise OAuthError("invalid_request", 'Missing "code_verifier".')
    if not VERIFIER_PATTERN.match(verifier):
        raise OAuthError("invalid_request", 'Invalid "code_verifier".')
    if not hmac.compare_digest(s256_challenge(verifier), challenge):
        raise OAuthError("invalid_grant", "Code challenge failed.")


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """Decode an HTTP Basic `Authorization` header into (client_id, secret), or None."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def basic_auth_header(client_id: str, secret: str) -> str:
    """Build the HTTP Basic header value for a client id and secret."""
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def check_client(header: str | None, client_id: str, client_secret: str) -> str:
    """Authenticate a confidential client by Basic auth; raise 401 `invalid_client` if wrong."""
    credentials = parse_basic_auth(header)
    if credentials is None:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    given_id, given_secret = credentials
    id_ok = hmac.compare_digest(given_id.encode(), client_id.encode())
    secret_ok = hmac.compare_digest(given_secret.encode(), client_secret.encode())
    if not (id_ok and secret_ok):
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    return given_id


def add_query(uri: str, params: dict[str, str]) -> str:
    """Append parameters to a redirect URI, keeping its own query (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def split_scopes(scope: str | None) -> tuple[str, ...]:
    """Split a space-separated scope string into unique scopes, order kept."""
    seen: dict[str, None] = {}
    for item in (scope or "").split():
        seen.setdefault(item, None)
    return tuple(seen)
