"""OAuth 2.0 authorization-code steps as pure functions (RFC 6749, RFC 7636 PKCE)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit


def new_state() -> str:
    """An unguessable, single-use `state` value (RFC 6749 §10.12)."""
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    """A PKCE code verifier: 43 characters of [A-Za-z0-9-_] (RFC 7636 §4.1)."""
    return secrets.token_urlsafe(32)


def s256_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def state_digest(state: str) -> str:
    """What is stored of a state: its hash, so a database read cannot forge callbacks."""
    return hashlib.sha256(state.encode()).hexdigest()


def build_authorize_url(
    authorize_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    scope_separator: str,
    state: str,
    code_challenge: str | None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The authorization request URL (RFC 6749 §4.1.1), keeping any query the URL has."""
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ]
    if scopes:
        params.append(("scope", scope_separator.join(scopes)))
    if code_challenge is not None:
        params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    params += list((extra or {}).items())
    parts = urlsplit(authorize_url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def authorization_code_form(
    code: str, redirect_uri: str, code_verifier: str | None
) -> list[tuple[str, str]]:
    """The token request of the code grant (RFC 6749 §4.1.3)."""
    form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)]
    if code_verifier is not None:
        form.append(("code_verifier", code_verifier))
    return form


def refresh_form(refresh_token: str) -> list[tuple[str, str]]:
    """The token request of the refresh grant (RFC 6749 §6)."""
    return [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]


class TokenResponseError(Exception):
    """The token endpoint answered with an error (RFC 6749 §5.2) or an unusable body."""

    def __init__(self, error: str, description: str | None, status: int) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A parsed successful token response."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scope: str | None
    token_type: str
    body: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The whole JSON answer, where captured values are read from."""
    captured: dict[str, str] = field(default_factory=dict, repr=False)
    """Values the catalog captures, learnt with this token set (stored beside it)."""

    def __repr__(self) -> str:
        return f"TokenSet(access_token='***', refresh_token='***', expires_at={self.expires_at!r})"

    def stored_values(
        self,
        previous_refresh: str | None = None,
        *,
        rotates: bool = False,
        previous: Mapping[str, str] | None = None,
        kept: Iterable[str] = (),
    ) -> dict[str, str]:
        """The fields Keygate encrypts. A missing refresh token keeps the previous one, unless
        refresh tokens rotate (the previous one is spent); the captured values named in `kept`
        are carried over from `previous` unless this answer carries them again."""
        values = {"access_token": self.access_token, "token_type": self.token_type}
        refresh = self.refresh_token or (None if rotates else previous_refresh)
        if refresh:
            values["refresh_token"] = refresh
        if self.scope:
            values["scope"] = self.scope
        for name in kept:
            if previous is not None and name in previous:
                values[name] = previous[name]
        values.update(self.captured)
        return values


@dataclass(frozen=True, slots=True)
class Lifetime:
    """How a provider states an access token's lifetime.

    `unit` is the seconds one `expires_in` counts; `default` the lifetime (seconds) when it is
    absent or 0 (None: such a token does not expire); `expires` False means tokens never do.
    """

    unit: float = 1.0
    default: int | None = None
    expires: bool = True


_UNITS = {"seconds": 1.0, "minutes": 60.0, "milliseconds": 0.001}


def lifetime_of(expires: bool, unit: str, default: int | None) -> Lifetime:
    """The `Lifetime` a catalog method's `expires`, `expires_in_unit`, `default_expires_in` say."""
    return Lifetime(_UNITS[unit], default, expires)


def parse_token_response(
    status: int, body: Any, now: datetime, lifetime: Lifetime | None = None
) -> TokenSet:
    """A token set from a token endpoint answer, or TokenResponseError (RFC 6749 §5.1, §5.2)."""
    lifetime = lifetime or Lifetime()
    if not isinstance(body, dict):
        raise TokenResponseError(
            "invalid_response", "the token endpoint did not answer JSON", status
        )
    if status >= 400 or "error" in body:
        error = body.get("error")
        description = body.get("error_description")
        return_error = str(error) if isinstance(error, str) else "invalid_response"
        raise TokenResponseError(
            return_error, str(description) if isinstance(description, str) else None, status
        )
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenResponseError("invalid_response", "no access_token in the answer", status)
    expires_in = body.get("expires_in")
    seconds: float | None = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        seconds = float(expires_in) * lifetime.unit
    elif isinstance(expires_in, str) and expires_in.isdigit() and int(expires_in) > 0:
        seconds = int(expires_in) * lifetime.unit
    if seconds is None and lifetime.default is not None:
        seconds = float(lifetime.default)
    expires_at = now + timedelta(seconds=seconds) if seconds and lifetime.expires else None
    refresh = body.get("refresh_token")
    scope = body.get("scope")
    token_type = body.get("token_type")
    return TokenSet(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
        scope=scope if isinstance(scope, str) else None,
        token_type=token_type if isinstance(token_type, str) else "Bearer",
        body=body,
    )
