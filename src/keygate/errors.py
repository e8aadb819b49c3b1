"""The one exception tree. Each error has a stable snake_case code and an HTTP status.

Errors are grouped by what the caller should do about them, as httpx groups its exceptions:

    KeygateError                       500 internal_error: a bug; the X-Request-Id is in the log
    ├── InvalidRequestError            fix the request, then send it again
    │   ├── BadRequest                 400 invalid_request
    │   │   └── MalformedBody          400 invalid_request (bad chunked framing, early end)
    │   ├── InvalidPath                400 invalid_path
    │   ├── InvalidHeader              400 invalid_header
    │   ├── UnsupportedMethodError     400 unsupported_method
    │   ├── UnknownAppInRequest        400 unknown_app
    │   ├── InvalidCursor              400 invalid_cursor
    │   ├── MethodNotAllowedError      405 method_not_allowed (with Allow)
    │   ├── RequestTimeout             408 request_timeout (the body stalled)
    │   └── BodyTooLarge               413 body_too_large
    ├── AuthenticationError            send a valid Keygate API key
    │   └── InvalidApiKey              401 invalid_api_key
    ├── ResourceNotFound               check the name or id
    │   ├── NotFoundError              404 not_found
    │   ├── UnknownAppError            404 unknown_app
    │   └── ConnectionNotFound         404 connection_not_found
    ├── ConnectionStateError           create, authorize or choose another connection
    │   ├── NoActiveConnection         400 no_active_connection
    │   ├── ConnectionAppMismatch      400 connection_app_mismatch
    │   ├── ConnectionNotActive        400 connection_not_active
    │   └── ReauthorizationRequired    424 reauthorization_required (with reconnect_url)
    ├── UpstreamError                  the third-party API failed: retry later
    │   ├── UpstreamUnreachable        502 upstream_unreachable
    │   └── UpstreamTimeout            504 upstream_timeout
    ├── UnavailableError               Keygate cannot answer now: retry after Retry-After
    │   ├── RateLimited                429 rate_limited
    │   ├── CredentialsUnavailable     503 credentials_unavailable
    │   └── StoreUnavailable           503 store_unavailable (the database is unreachable)
    └── InjectionMisconfigured         500 internal_error (the catalog no longer fits a stored
                                       connection: an operator's fault, not a credentials outage)

`ConfigurationError` is not in the tree: it stops start-up and never reaches a caller.
`tests/test_errors.py` checks every code and status of the contract's tables against this tree.
Errors become JSON in exactly one place (`render_error`); no message here ever carries a secret.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class KeygateError(Exception):
    """Base of every error Keygate reports to a caller."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = (
        "Keygate hit an internal error; the X-Request-Id of this response is in its log."
    )

    caller: tuple[str, str] | None = None
    """The (workspace id, API key prefix) of the gateway request refused, when known (set by
    the gateway for its request log; never part of the answer)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body of this error, per the contract."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        error.update(self.extra)
        return {"error": error}


# --- fix the request ---------------------------------------------------------------------------


class InvalidRequestError(KeygateError):
    """The request itself is wrong: fixing it is the caller's part."""


class BadRequest(InvalidRequestError):
    """The request is malformed: wrong JSON, wrong types, unknown fields."""

    code = "invalid_request"
    status = 400
    default_message = "The request is invalid."


class MalformedBody(BadRequest):
    """The request body could not be read: bad chunked framing, or it ended early."""

    default_message = (
        "The request body could not be read: its chunked encoding is malformed, or the "
        "connection ended before the body did."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Connection": "close"})


class InvalidPath(InvalidRequestError):
    """The native path could leave the app's upstream host."""

    code = "invalid_path"
    status = 400


class InvalidHeader(InvalidRequestError):
    """A request header value the gateway cannot forward as sent."""

    code = "invalid_header"
    status = 400


class UnsupportedMethodError(InvalidRequestError):
    """The app does not support the requested connection method."""

    code = "unsupported_method"
    status = 400


class UnknownAppInRequest(InvalidRequestError):
    """A request body or filter names an app the catalog does not have."""

    code = "unknown_app"
    status = 400


class InvalidCursor(InvalidRequestError):
    """A listing cursor that this Keygate did not issue."""

    code = "invalid_cursor"
    status = 400
    default_message = "The cursor is not valid; use next_cursor from a previous listing."


class MethodNotAllowedError(InvalidRequestError):
    """A route called with a method it does not serve; `Allow` lists the methods it does."""

    code = "method_not_allowed"
    status = 405
    default_message = "Method not allowed."

    def __init__(self, allow: str, message: str | None = None) -> None:
        # RFC 9110 §15.5.6: a 405 carries Allow.
        super().__init__(message, headers={"Allow": allow})


class RequestTimeout(InvalidRequestError):
    """The request body stalled past the configured idle limit."""

    code = "request_timeout"
    status = 408

    def __init__(self, message: str | None = None) -> None:
        # The rest of the body may still arrive: the connection cannot carry another request.
        super().__init__(message, headers={"Connection": "close"})


class BodyTooLarge(InvalidRequestError):
    """The request body exceeds the configured limit."""

    code = "body_too_large"
    status = 413


# --- authenticate ------------------------------------------------------------------------------


class AuthenticationError(KeygateError):
    """The caller is not who it must be: send a valid Keygate API key."""


class InvalidApiKey(AuthenticationError):
    """Missing, unknown or revoked Keygate API key."""

    code = "invalid_api_key"
    status = 401
    default_message = (
        "Missing or invalid Keygate API key. Send 'Authorization: Bearer kg_…' "
        "with a key created by 'keygate keys create'."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="keygate"'})


# --- check the name or id ----------------------------------------------------------------------


class ResourceNotFound(KeygateError):
    """What the request names does not exist (for this caller)."""


class NotFoundError(ResourceNotFound):
    """A route that does not exist."""

    code = "not_found"
    status = 404
    default_message = "Not found."


class UnknownAppError(ResourceNotFound):
    """The app is not in the catalog."""

    code = "unknown_app"
    status = 404
    default_message = "Unknown app."


class ConnectionNotFound(ResourceNotFound):
    """No connection with that id in the caller's workspace."""

    code = "connection_not_found"
    status = 404
    default_message = "No connection with that id in this workspace."


# --- fix the connection ------------------------------------------------------------------------


class ConnectionStateError(KeygateError):
    """The connection the request needs is missing or not usable: a person or the caller must
    create, authorize or choose one."""


class NoActiveConnection(ConnectionStateError):
    """The workspace has no ACTIVE connection for the app."""

    code = "no_active_connection"
    status = 400


class ConnectionAppMismatch(ConnectionStateError):
    """The chosen connection belongs to another app."""

    code = "connection_app_mismatch"
    status = 400


class ConnectionNotActive(ConnectionStateError):
    """The chosen connection is not ACTIVE."""

    code = "connection_not_active"
    status = 400


class ReauthorizationRequired(ConnectionStateError):
    """The credentials are dead for good; a person must re-authorize."""

    code = "reauthorization_required"
    status = 424


# --- the upstream failed -----------------------------------------------------------------------


class UpstreamError(KeygateError):
    """The third-party API could not be used; the request may succeed later."""


class UpstreamUnreachable(UpstreamError):
    """Connecting to the upstream failed, or it reset the connection."""

    code = "upstream_unreachable"
    status = 502
    default_message = "The upstream API could not be reached."


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time."""

    code = "upstream_timeout"
    status = 504
    default_message = "The upstream API did not answer in time."


# --- retry later -------------------------------------------------------------------------------


class UnavailableError(KeygateError):
    """Keygate cannot answer this now; the caller should retry after `Retry-After`."""


class RateLimited(UnavailableError):
    """Keygate's own per-key rate limit was hit."""

    code = "rate_limited"
    status = 429


class CredentialsUnavailable(UnavailableError):
    """Refreshing credentials is failing transiently."""

    code = "credentials_unavailable"
    status = 503


class StoreUnavailable(UnavailableError):
    """The database is unreachable and the answer needs it (raised at the store boundary)."""

    code = "store_unavailable"
    status = 503
    default_message = (
        "Keygate's database is unreachable; retry after the number of seconds in Retry-After."
    )
    retry_after_seconds: ClassVar[int] = 5

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(self.retry_after_seconds)})


# --- an operator's fault -----------------------------------------------------------------------


class InjectionMisconfigured(KeygateError):
    """The catalog no longer fits a stored connection (its method or a templated field is gone):
    an operator's configuration fault, so an internal error, not a credentials outage."""

    code = "internal_error"
    status = 500


class ConfigurationError(Exception):
    """Keygate cannot start: a setting, key or catalog file is wrong. Not an HTTP error."""


def describe_validation(exc: Any) -> str:
    """A short, actionable sentence from a pydantic or FastAPI validation error."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


def render_error(error: KeygateError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body of the JSON response for an error."""
    body = orjson.dumps(error.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"keygate-error", error.code.encode()),
    ]
    headers.extend((k.lower().encode(), v.encode()) for k, v in error.headers.items())
    return error.status, headers, body
