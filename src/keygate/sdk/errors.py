"""The SDK's exceptions: one class per `Keygate-Error` code, under one base.

    KeygateError                        anything this SDK raises
    ├── KeygateUnreachable              Keygate could not be reached (after the retries)
    ├── WaitTimeout                     `connections.wait` ran out of time (also a TimeoutError)
    ├── ConnectionFailed                `connections.wait` saw the connection turn FAILED
    ├── UpstreamError                   the provider's own non-2xx answer, passed through Keygate
    └── GatewayError                    Keygate's own error answer (it carries `Keygate-Error`)
        ├── InvalidRequestError         fix the request
        │   ├── BadRequest              400 invalid_request
        │   ├── InvalidPath             400 invalid_path
        │   ├── InvalidHeader           400 invalid_header
        │   ├── UnsupportedMethod       400 unsupported_method
        │   ├── InvalidCursor           400 invalid_cursor
        │   ├── MethodNotAllowed        405 method_not_allowed
        │   ├── RequestTimeout          408 request_timeout
        │   └── BodyTooLarge            413 body_too_large
        ├── AuthenticationError
        │   └── InvalidApiKey           401 invalid_api_key
        ├── ResourceNotFound
        │   ├── NotFound                404 not_found
        │   ├── UnknownApp              400/404 unknown_app
        │   └── ConnectionNotFound      404 connection_not_found
        ├── ConnectionStateError        create, authorize or choose another connection
        │   ├── NoActiveConnection      400 no_active_connection
        │   ├── ConnectionAppMismatch   400 connection_app_mismatch
        │   ├── ConnectionNotActive     400 connection_not_active
        │   └── ReauthorizationRequired 424 reauthorization_required (`reconnect_url`)
        ├── UpstreamUnavailable         Keygate could not use the provider
        │   ├── UpstreamUnreachable     502 upstream_unreachable
        │   └── UpstreamTimeout         504 upstream_timeout
        ├── UnavailableError            retry after `retry_after` seconds
        │   ├── RateLimited             429 rate_limited
        │   ├── CredentialsUnavailable  503 credentials_unavailable
        │   └── StoreUnavailable        503 store_unavailable
        └── InternalError               500 internal_error

A `GatewayError` whose code this SDK does not know yet is raised as `GatewayError` itself.
The classes mirror the server's tree (`keygate.errors`) without importing it: the SDK needs none
of the server's dependencies. A test pins one SDK class per server code.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx


class KeygateError(Exception):
    """Base of everything the Keygate SDK raises."""


class KeygateUnreachable(KeygateError):
    """Keygate could not be reached: connect error, reset or timeout, after the retries."""


class WaitTimeout(KeygateError, TimeoutError):
    """A connection did not reach the awaited status in time."""

    def __init__(self, message: str, connection: Any) -> None:
        super().__init__(message)
        self.connection = connection
        """The connection as last seen (a `keygate.sdk.Connection`)."""


class ConnectionFailed(KeygateError):
    """A connection that was awaited turned FAILED (the person refused, or the key was wrong)."""

    def __init__(self, message: str, connection: Any) -> None:
        super().__init__(message)
        self.connection = connection
        """The FAILED connection; its `error` says why."""


class _HttpError(KeygateError):
    """An HTTP answer that is an error: its status, parsed body and request id."""

    def __init__(self, message: str, response: httpx.Response, body: Any) -> None:
        super().__init__(message)
        self.response = response
        self.status: int = response.status_code
        self.body: Any = body
        """The parsed JSON body, or the text when it is not JSON."""
        self.request_id: str | None = response.headers.get("x-request-id")
        self.connection_id: str | None = response.headers.get("keygate-connection")


class UpstreamError(_HttpError):
    """The provider answered with a non-2xx status (no `Keygate-Error` header): its status,
    body and Keygate's request id are here, untouched."""


class GatewayError(_HttpError):
    """Keygate's own error answer: `code` is its `Keygate-Error` header, `message` its text."""

    code: ClassVar[str] = ""

    def __init__(self, message: str, response: httpx.Response, body: Any) -> None:
        super().__init__(message, response, body)
        self.message = message
        self.error_code: str = response.headers.get("keygate-error", self.code)
        """The code as sent (the same as `code`, except on a plain `GatewayError`)."""
        self.retry_after: float | None = retry_after(response)
        """Seconds the answer's `Retry-After` asks to wait, if it has one."""


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    date = response.headers.get("date")
    if date is None:
        return None
    try:
        # Measured against the answer's own Date, so the two clocks need not agree.
        wait = (parsedate_to_datetime(value) - parsedate_to_datetime(date)).total_seconds()
    except (TypeError, ValueError):  # unparsable, or one date without a zone
        return None
    return max(0.0, wait)


class InvalidRequestError(GatewayError):
    """The request itself is wrong: fix it, then send it again."""


class BadRequest(InvalidRequestError):
    """Malformed request: wrong JSON, wrong types, unknown fields."""

    code = "invalid_request"


class InvalidPath(InvalidRequestError):
    """The native path could leave the app's upstream host."""

    code = "invalid_path"


class InvalidHeader(InvalidRequestError):
    """A header value the gateway cannot forward."""

    code = "invalid_header"


class UnsupportedMethod(InvalidRequestError):
    """The app does not support the requested connection method."""

    code = "unsupported_method"


class InvalidCursor(InvalidRequestError):
    """A listing cursor this Keygate did not issue."""

    code = "invalid_cursor"


class MethodNotAllowed(InvalidRequestError):
    """An HTTP method the gateway does not forward."""

    code = "method_not_allowed"


class RequestTimeout(InvalidRequestError):
    """The request body stalled past Keygate's limit."""

    code = "request_timeout"


class BodyTooLarge(InvalidRequestError):
    """The request body is over Keygate's limit."""

    code = "body_too_large"


class AuthenticationError(GatewayError):
    """The Keygate API key was refused."""


class InvalidApiKey(AuthenticationError):
    """Missing, unknown or revoked Keygate API key."""

    code = "invalid_api_key"


class ResourceNotFound(GatewayError):
    """What the request names does not exist for this key."""


class NotFound(ResourceNotFound):
    """No such route."""

    code = "not_found"


class UnknownApp(ResourceNotFound):
    """The app is not in this Keygate's catalog."""

    code = "unknown_app"


class ConnectionNotFound(ResourceNotFound):
    """No connection with that id in this workspace."""

    code = "connection_not_found"


class ConnectionStateError(GatewayError):
    """The connection the call needs is missing or unusable: create, authorize or choose one."""


class NoActiveConnection(ConnectionStateError):
    """The workspace has no ACTIVE connection for the app: create one and open its url."""

    code = "no_active_connection"


class ConnectionAppMismatch(ConnectionStateError):
    """The chosen connection belongs to another app."""

    code = "connection_app_mismatch"


class ConnectionNotActive(ConnectionStateError):
    """The chosen connection is not ACTIVE."""

    code = "connection_not_active"


class ReauthorizationRequired(ConnectionStateError):
    """The credentials are dead for good: a person must open `reconnect_url`."""

    code = "reauthorization_required"

    def __init__(self, message: str, response: httpx.Response, body: Any) -> None:
        super().__init__(message, response, body)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.reconnect_url: str | None = error.get("reconnect_url")
        """The link a person opens to re-authorize the connection (it keeps its id)."""
        self.connection_id = error.get("connection_id", self.connection_id)


class UpstreamUnavailable(GatewayError):
    """Keygate could not use the provider's API; the call may succeed later."""


class UpstreamUnreachable(UpstreamUnavailable):
    """Connecting to the provider failed, or it reset the connection."""

    code = "upstream_unreachable"


class UpstreamTimeout(UpstreamUnavailable):
    """The provider did not answer in time."""

    code = "upstream_timeout"


class UnavailableError(GatewayError):
    """Keygate cannot answer now: retry after `retry_after` seconds."""


class RateLimited(UnavailableError):
    """This key's rate limit at Keygate was hit."""

    code = "rate_limited"


class CredentialsUnavailable(UnavailableError):
    """Refreshing the connection's credentials is failing for now."""

    code = "credentials_unavailable"


class StoreUnavailable(UnavailableError):
    """Keygate's database is unreachable."""

    code = "store_unavailable"


class InternalError(GatewayError):
    """A Keygate bug; its log holds the request id."""

    code = "internal_error"


def _leaves(cls: type[GatewayError]) -> list[type[GatewayError]]:
    found = [cls] if cls.code else []
    for sub in cls.__subclasses__():
        found.extend(_leaves(sub))
    return found


ERRORS_BY_CODE: dict[str, type[GatewayError]] = {cls.code: cls for cls in _leaves(GatewayError)}
"""Each `Keygate-Error` code and the class raised for it."""


def parse_body(response: httpx.Response) -> Any:
    """The response body as JSON, else as text (an empty body is None)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def error_for(response: httpx.Response) -> KeygateError | None:
    """The exception for an answer with an error status, or None for a success (< 400)."""
    if response.status_code < 400:
        return None
    body = parse_body(response)
    code = response.headers.get("keygate-error")
    if code is None:
        return UpstreamError(
            f"The upstream API answered {response.status_code} "
            f"(request {response.headers.get('x-request-id', '?')}).",
            response,
            body,
        )
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    cls = ERRORS_BY_CODE.get(code, GatewayError)
    return cls(message or f"Keygate answered {response.status_code} {code}.", response, body)
