"""The one exception tree. Each error has a stable snake_case code and an HTTP status.

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


class BadRequest(KeygateError):
    """The request is malformed: wrong JSON, wrong types, unknown fields."""

    code = "invalid_request"
    status = 400
    default_message = "The request is invalid."


class UnknownAppError(KeygateError):
    """The app is not in the catalog."""

    code = "unknown_app"
    status = 404
    default_message = "Unknown app."


class UnsupportedMethodError(KeygateError):
    """The app does not support the requested connection method."""

    code = "unsupported_method"
    status = 400


class NotFoundError(KeygateError):
    """A route that does not exist."""

    code = "not_found"
    status = 404
    default_message = "Not found."


class MethodNotAllowedError(KeygateError):
    """A route called with a method it does not serve; `Allow` lists the methods it does."""

    code = "method_not_allowed"
    status = 405
    default_message = "Method not allowed."

    def __init__(self, allow: str, message: str | None = None) -> None:
        # RFC 9110 §15.5.6: a 405 carries Allow.
        super().__init__(message, headers={"Allow": allow})


class ConnectionNotFound(KeygateError):
    """No connection with that id in the caller's workspace."""

    code = "connection_not_found"
    status = 404
    default_message = "No connection with that id in this workspace."


class InvalidApiKey(KeygateError):
    """Missing, unknown or revoked Keygate API key."""

    code = "invalid_api_key"
    status = 401
    default_message = (
        "Missing or invalid Keygate API key. Send 'Authorization: Bearer kg_…' "
        "with a key created by 'keygate keys create'."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="keygate"'})


class BodyTooLarge(KeygateError):
    """The request body exceeds the configured limit."""

    code = "body_too_large"
    status = 413


class NoActiveConnection(KeygateError):
    """The workspace has no ACTIVE connection for the app."""

    code = "no_active_connection"
    status = 400


class ConnectionAppMismatch(KeygateError):
    """The chosen connection belongs to another app."""

    code = "connection_app_mismatch"
    status = 400


class ConnectionNotActive(KeygateError):
    """The chosen connection is not ACTIVE."""

    code = "connection_not_active"
    status = 400


class InvalidPath(KeygateError):
    """The native path could leave the app's upstream host."""

    code = "invalid_path"
    status = 400


class ReauthorizationRequired(KeygateError):
    """The credentials are dead for good; a person must re-authorize."""

    code = "reauthorization_required"
    status = 424


class RateLimited(KeygateError):
    """Keygate's own per-key rate limit was hit."""

    code = "rate_limited"
    status = 429


class UpstreamUnreachable(KeygateError):
    """Connecting to the upstream failed, or it reset the connection."""

    code = "upstream_unreachable"
    status = 502
    default_message = "The upstream API could not be reached."


class CredentialsUnavailable(KeygateError):
    """Refreshing credentials is failing transiently."""

    code = "credentials_unavailable"
    status = 503


class UpstreamTimeout(KeygateError):
    """The upstream did not answer in time."""

    code = "upstream_timeout"
    status = 504
    default_message = "The upstream API did not answer in time."


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


class UnknownAppInRequest(KeygateError):
    """A request body or filter names an app the catalog does not have."""

    code = "unknown_app"
    status = 400


class InvalidCursor(KeygateError):
    """A listing cursor that this Keygate did not issue."""

    code = "invalid_cursor"
    status = 400
    default_message = "The cursor is not valid; use next_cursor from a previous listing."


class InjectionMisconfigured(KeygateError):
    """The catalog no longer fits a stored connection (its method or a templated field is gone):
    an operator's configuration fault, so an internal error, not a credentials outage."""

    code = "internal_error"
    status = 500


class InvalidHeader(KeygateError):
    """A request header value the gateway cannot forward as sent."""

    code = "invalid_header"
    status = 400


class StoreUnavailable(KeygateError):
    """The database is unreachable and the answer needs it (raised at the store boundary)."""

    code = "store_unavailable"
    status = 503
    default_message = (
        "Keygate's database is unreachable; retry after the number of seconds in Retry-After."
    )
    retry_after_seconds: ClassVar[int] = 5

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(self.retry_after_seconds)})


class RequestTimeout(KeygateError):
    """The request body stalled past the configured idle limit."""

    code = "request_timeout"
    status = 408

    def __init__(self, message: str | None = None) -> None:
        # The rest of the body may still arrive: the connection cannot carry another request.
        super().__init__(message, headers={"Connection": "close"})


class MalformedBody(BadRequest):
    """The request body could not be read: bad chunked framing, or it ended early."""

    default_message = (
        "The request body could not be read: its chunked encoding is malformed, or the "
        "connection ended before the body did."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Connection": "close"})
