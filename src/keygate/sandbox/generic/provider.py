"""The rules one catalog entry gives a provider, enforced in memory: the generic sandbox's state.

It plays the provider as the entry describes it, strictly: what the entry says Keygate must
send (client authentication, body format, PKCE, the registered redirect URI, token parameters,
a refresh token used once where they rotate, the credential where and how `inject` puts it, at
the URL the parameters make) is required, and every refusal says why.

The values it expects and issues are the entry's examples: each parameter's `example` is the
account a connection names, each capture's `example` what the provider answers with, and each
secret field's `example` (or a fixed stand-in) the key it accepts.
"""

from __future__ import annotations

import hmac
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from keygate.catalog.auth import render_auth
from keygate.catalog.model import ApiKeyMethod, AppSpec, OAuth2Method
from keygate.catalog.templates import fill, render_url
from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.oauth.protocol import OAuthError, parse_basic_auth, verify_pkce

CLIENT_ID = "generic-client"
CLIENT_SECRET = "generic-secret"  # noqa: S105 - a well-known test credential
DEFAULT_TTL = 3600
_UNIT_DIVISOR = {"seconds": 1.0, "minutes": 60.0, "milliseconds": 0.001}


def secret_value(name: str, example: str | None) -> str:
    """The value the sandbox accepts for a secret field: its example, else a stand-in."""
    return example if example is not None else f"sbx-{name}-0123456789"


def meant(url: str) -> str:
    """A URL without its scheme: `host/path?query`, what the sandbox compares."""
    return url.split("://", 1)[-1]


@dataclass
class Code:
    """An issued authorization code."""

    redirect_uri: str
    challenge: str | None
    used: bool = False


@dataclass
class Issued:
    """An issued access token."""

    expires_at: float | None
    revoked: bool = False


@dataclass
class Refresh:
    """An issued refresh token; `spent` once used where refresh tokens rotate."""

    spent: bool = False
    revoked: bool = False


@dataclass
class Refusal:
    """Why the sandbox last refused something (tests and people read it)."""

    where: str
    reason: str


@dataclass
class ProviderState:
    """One provider played from one catalog entry."""

    spec: AppSpec
    redirect_uri: str
    clock: SandboxClock
    access_ttl: int = DEFAULT_TTL
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    codes: dict[str, Code] = field(default_factory=dict)
    access: dict[str, Issued] = field(default_factory=dict)
    refresh: dict[str, Refresh] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    refusals: list[Refusal] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    """Values to use instead of the entry's examples (a test moves a captured value: the
    provider then issues it, and expects requests there)."""

    @property
    def values(self) -> dict[str, str]:
        """The parameters and captured values a connection of this provider has."""
        values = {p.name: p.example for p in self.spec.params}
        for method in self.spec.methods:
            values.update({p.name: p.example for p in method.params})
            if isinstance(method, OAuth2Method):
                values.update({c.name: c.example for c in method.capture})
        values.update(self.answers)
        return values

    def secrets_for(self, method: ApiKeyMethod) -> dict[str, str]:
        """The secret field values the sandbox accepts for a pasted-secret method."""
        return {f.name: secret_value(f.name, f.example) for f in method.fields}

    def oauth(self) -> OAuth2Method | None:
        """The entry's OAuth method, if it has one."""
        found = [m for m in self.spec.methods if isinstance(m, OAuth2Method)]
        return found[0] if found else None

    def url(self, template: str) -> str:
        """A template of the entry as the sandbox expects it to arrive (without scheme)."""
        return meant(render_url(template, self.values))

    def refuse(
        self, where: str, reason: str, error: str = "invalid_request", status: int = 400
    ) -> OAuthError:
        """Record a refusal and return the error to raise."""
        self.refusals.append(Refusal(where, reason))
        self.counts[f"{where}_refused"] += 1
        return OAuthError(error, reason, status)

    # The authorization endpoint.

    def authorize(self, oauth: OAuth2Method, query: dict[str, str]) -> dict[str, str]:
        """Check an authorization request; the callback's query parameters (code, state,
        callback captures) when it is right."""
        self.counts["authorize"] += 1
        where = "authorize"
        if query.get("client_id") != self.client_id:
            raise self.refuse(where, "unknown client_id", "invalid_client")
        if query.get("redirect_uri") != self.redirect_uri:
            raise self.refuse(where, "redirect_uri is not the registered one")
        if query.get("response_type") != "code":
            raise self.refuse(where, "response_type must be code", "unsupported_response_type")
        expected_scope = oauth.scope_separator.join(oauth.scopes)
        if oauth.scopes and query.get("scope") != expected_scope:
            raise self.refuse(where, f"scope must be {expected_scope!r}", "invalid_scope")
        for name, template in oauth.authorize_params.items():
            if query.get(name) != fill(template, self.values):
                raise self.refuse(where, f"authorize parameter {name} is missing or wrong")
        challenge = query.get("code_challenge") or None
        if challenge is None and oauth.pkce == "required":
            raise self.refuse(where, "PKCE code_challenge is required")
        if challenge is not None and query.get("code_challenge_method") != "S256":
            raise self.refuse(where, "code_challenge_method must be S256")
        if challenge is not None and oauth.pkce == "none":
            raise self.refuse(where, "this provider does not take PKCE")
        code = secrets.token_urlsafe(16)
        self.codes[code] = Code(self.redirect_uri, challenge)
        answer = {"code": code}
        if "state" in query:
            answer["state"] = query["state"]
        for capture in oauth.capture:
            if capture.source == "callback":
                answer[capture.path] = self.values[capture.name]
        return answer

    # The token and revocation endpoints.

    def check_client(
        self, oauth: OAuth2Method, where: str, authorization: str | None, body: dict[str, str]
    ) -> None:
        """The client authenticates exactly as the entry's `client_auth` says."""
        basic = parse_basic_auth(authorization)
        in_body = "client_secret" in body
        if oauth.client_auth == "basic":
            if basic is None or in_body:
                raise self.refuse(
                    where, "client authentication must be HTTP Basic only", "invalid_client", 401
                )
            given_id, given_secret = basic
        else:
            if authorization is not None or not in_body:
                raise self.refuse(
                    where, "client_id and client_secret must be in the body", "invalid_client", 401
                )
            given_id, given_secret = body.get("client_id", ""), body.get("client_secret", "")
        if not (
            hmac.compare_digest(given_id, self.client_id)
            and hmac.compare_digest(given_secret, self.client_secret)
        ):
            raise self.refuse(where, "wrong client credentials", "invalid_client", 401)

    def token(
        self, oauth: OAuth2Method, authorization: str | None, body: dict[str, str]
    ) -> dict[str, Any]:
        """Answer a token request: the code exchange or a refresh."""
        grant = body.get("grant_type", "")
        self.counts[f"token_{grant or 'missing'}"] += 1
        where = "token"
        self.check_client(oauth, where, authorization, body)
        for name, template in oauth.token_params.items():
            if body.get(name) != fill(template, self.values):
                raise self.refuse(where, f"token parameter {name} is missing or wrong")
        if grant == "authorization_code":
            code = self.codes.get(body.get("code", ""))
            if code is None or code.used:
                raise self.refuse(where, "unknown or used code", "invalid_grant")
            code.used = True
            if body.get("redirect_uri") != code.redirect_uri:
                raise self.refuse(
                    where, "redirect_uri differs from the authorization's", "invalid_grant"
                )
            if code.challenge is not None:
                try:
                    verify_pkce(code.challenge, body.get("code_verifier"))
                except OAuthError as exc:
                    raise self.refuse(where, exc.description, exc.error) from None
            elif body.get("code_verifier"):
                raise self.refuse(where, "code_verifier without a code_challenge")
            return self._issue(oauth, new_refresh=oauth.refresh_tokens)
        if grant == "refresh_token":
            if not oauth.refresh_tokens:
                raise self.refuse(
                    where, "this provider issues no refresh tokens", "unsupported_grant_type"
                )
            record = self.refresh.get(body.get("refresh_token", ""))
            if record is None or record.revoked:
                raise self.refuse(where, "unknown or revoked refresh token", "invalid_grant")
            if record.spent:
                raise self.refuse(
                    where, "refresh token already used (they rotate)", "invalid_grant"
                )
            if oauth.refresh_token_rotates:
                record.spent = True
            return self._issue(oauth, new_refresh=oauth.refresh_token_rotates)
        raise self.refuse(where, f"unsupported grant_type {grant!r}", "unsupported_grant_type")

    def _lifetime(self, oauth: OAuth2Method) -> int | None:
        if not oauth.expires:
            return None
        return oauth.default_expires_in or self.access_ttl

    def _issue(self, oauth: OAuth2Method, *, new_refresh: bool) -> dict[str, Any]:
        lifetime = self._lifetime(oauth)
        access = secrets.token_urlsafe(24)
        now = self.clock.now()
        self.access[access] = Issued(None if lifetime is None else now + lifetime)
        answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
        if lifetime is not None and oauth.default_expires_in is None:
            # In the entry's unit; an entry with a default lifetime gets no expires_in at all.
            answer["expires_in"] = round(lifetime / _UNIT_DIVISOR[oauth.expires_in_unit])
        if new_refresh:
            refresh = secrets.token_urlsafe(24)
            self.refresh[refresh] = Refresh()
            answer["refresh_token"] = refresh
        for capture in oauth.capture:
            if capture.source == "token":
                _put(answer, capture.path, self.values[capture.name])
        return answer

    def revoke(self, oauth: OAuth2Method, authorization: str | None, body: dict[str, str]) -> None:
        """Revoke the token given (RFC 7009): every token of the sandbox dies with it, as one
        connection is one grant here."""
        self.counts["revoke"] += 1
        self.check_client(oauth, "revoke", authorization, body)
        token = body.get("token", "")
        if token not in self.refresh and token not in self.access:
            return
        for issued in self.access.values():
            issued.revoked = True
        for record in self.refresh.values():
            record.revoked = True

    def expire_access_tokens(self) -> None:
        """Every access token that expires at all expires now."""
        now = self.clock.now()
        for issued in self.access.values():
            if issued.expires_at is not None:
                issued.expires_at = min(issued.expires_at, now)

    def live_tokens(self) -> list[str]:
        """The access tokens that work now."""
        now = self.clock.now()
        return [
            token
            for token, issued in self.access.items()
            if not issued.revoked and (issued.expires_at is None or issued.expires_at > now)
        ]

    # The follow-up request and the API.

    def capture_answer(self, oauth: OAuth2Method, headers: dict[str, str]) -> Any:
        """The answer to the entry's capture request, if it arrives authenticated."""
        self.counts["capture_request"] += 1
        request = oauth.capture_request
        assert request is not None
        for token in self.live_tokens():
            known = {**self.values, "access_token": token, "token_type": "Bearer"}
            if all(headers.get(n.lower()) == fill(v, known) for n, v in request.headers.items()):
                document: Any = None
                for capture in oauth.capture:
                    if capture.source == "request":
                        document = _put(document, capture.path, self.values[capture.name])
                return document
        raise self.refuse(
            "capture_request", "no live access token in the declared headers", "invalid_token", 401
        )

    def api(self, target: str, headers: dict[str, str], query: list[tuple[str, str]]) -> str:
        """The method whose injection the request carries, at that method's base URL; else
        OAuthError (401) saying what is wrong."""
        reasons = []
        for method in self.spec.methods:
            base = self.url(self.spec.base_url_for(method)).rstrip("/")
            if not (target == base or target.startswith(base + "/")):
                reasons.append(f"{method.type.value}: not under {base}")
                continue
            for header, value in self._default_headers():
                if headers.get(header.lower()) != value:
                    reasons.append(f"{method.type.value}: default header {header} missing")
                    break
            else:
                for candidate in self._credentials(method):
                    if _carries(render_auth(method, {**self.values, **candidate}), headers, query):
                        self.counts[f"api_{method.type.value}"] += 1
                        return method.type.value
                reasons.append(f"{method.type.value}: no valid credential where inject says")
        raise self.refuse("api", "; ".join(reasons), "invalid_token", 401)

    def _default_headers(self) -> list[tuple[str, str]]:
        return [
            (name, fill(value, self.values)) for name, value in self.spec.default_headers.items()
        ]

    def _credentials(self, method: OAuth2Method | ApiKeyMethod) -> list[dict[str, str]]:
        if isinstance(method, ApiKeyMethod):
            return [self.secrets_for(method)]
        return [{"access_token": t, "token_type": "Bearer"} for t in self.live_tokens()]


def _carries(auth: Any, headers: dict[str, str], query: list[tuple[str, str]]) -> bool:
    """Whether a request carries every header and query parameter of a rendered injection,
    each exactly once in the query."""
    for name, value in auth.headers:
        if headers.get(name.lower()) != value:
            return False
    if auth.query:
        for name, value in parse_qsl(auth.query):
            if [v for k, v in query if k == name] != [value]:
                return False
    return True


def _put(document: Any, path: str, value: str) -> Any:
    """`document` with `value` at a dotted path, made as needed (a number makes a list)."""
    segments = path.split(".")
    head, rest = segments[0], ".".join(segments[1:])
    if head.isdigit():
        items = document if isinstance(document, list) else []
        while len(items) <= int(head):
            items.append({})
        items[int(head)] = _put(items[int(head)], rest, value) if rest else value
        return items
    mapping = document if isinstance(document, dict) else {}
    mapping[head] = _put(mapping.get(head), rest, value) if rest else value
    return mapping
