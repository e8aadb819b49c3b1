"""The token lifecycle: refresh before expiry and after a 401, once per connection at a time.

When: a token is refreshed `refresh_margin` seconds before it expires — the configured margin,
but at most half the token's lifetime. A token that lives less than twice the margin (a 4 s
token against the default 300 s) is then refreshed once, at half its life, instead of being
due from the moment it is stored and refreshed on nearly every request.

Single flight has two layers. In a process, concurrent callers share one asyncio task. Across
processes and replicas, the refresh first takes a lock for the connection
(`ConnectionRepository.lock_credential`: the row's lock on PostgreSQL, a host lock on a SQLite
file), then re-reads its credential row: if another process already refreshed it (the version
moved on), its result is used and the provider is not called again.

Durability: the new token set is committed while the lock is held, before any caller sees it.
The one window no design can close is between the provider's answer and the commit: a crash
there loses a rotated refresh token the provider has already spent. The next refresh then gets
`invalid_grant` and the connection turns FAILED with `reauthorization_required` — visible, never
silently broken (README: "Token lifecycle and crash safety").
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pyreqwest.client import Client

from keygate import metrics
from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.values import CaptureFailed, substitution_values
from keygate.clock import Clock, system_clock, utc_now
from keygate.errors import CredentialsUnavailable, ReauthorizationRequired
from keygate.oauth.protocol import TokenResponseError, refresh_form
from keygate.oauth.token_endpoint import (
    OAuthClientMissing,
    TokenEndpointUnavailable,
    request_tokens,
)
from keygate.settings import Settings
from keygate.store.cache import BoundedMap
from keygate.store.connections import ConnectionRepository, HeldCredential
from keygate.store.records import ConnectionRecord, CredentialRecord, Status

log = logging.getLogger("keygate.oauth")

RefreshStep = Callable[[str, str], Awaitable[None]]
"""Observer of refresh steps: (step, connection id). Steps: locked, token_received, committed."""

PERMANENT_ERRORS = frozenset({"invalid_grant"})

_TokenRequestFailed = (
    TokenResponseError,
    TokenEndpointUnavailable,
    OAuthClientMissing,
    CaptureFailed,
)


def refresh_margin(
    margin_seconds: float, issued_at: datetime | None, expires_at: datetime
) -> float:
    """How long before `expires_at` a token is refreshed: `margin_seconds`, but at most half
    its lifetime, so that however short it is, it is refreshed once. A token whose issue time
    is unknown (stored before Keygate recorded it) gets the whole margin."""
    if issued_at is None:
        return margin_seconds
    lifetime = (expires_at - issued_at).total_seconds()
    return min(margin_seconds, max(0.0, lifetime / 2))


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """The settings refreshes follow: when, how long the provider may take, how to back off."""

    margin_seconds: float
    token_timeout: float
    backoff_base: float
    backoff_cap: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RefreshPolicy:
        """The policy the `KEYGATE_REFRESH_*` and `KEYGATE_TOKEN_TIMEOUT` settings give."""
        return cls(
            margin_seconds=settings.refresh_margin_seconds,
            token_timeout=settings.token_timeout,
            backoff_base=settings.refresh_backoff_base,
            backoff_cap=settings.refresh_backoff_cap,
        )

    def backoff_seconds(self, failures: int) -> float:
        """The wait after `failures` transient failures in a row: doubling, up to the cap."""
        return min(self.backoff_cap, self.backoff_base * 2.0 ** (failures - 1))


class _Effect(enum.Enum):
    """What a refresh leaves to do once its transaction has committed."""

    NONE = enum.auto()  # nothing was written: an error for the caller only
    REFRESHED = enum.auto()  # a new token set of ours: announce it and cache it
    STORED = enum.auto()  # someone else's newer row stands: cache it
    BACKED_OFF = enum.auto()  # a transient failure was recorded: cache the row with its wait
    REVOKED = enum.auto()  # the provider refused the refresh token: mark the connection FAILED


@dataclass(frozen=True, slots=True)
class _Outcome:
    credential: CredentialRecord | None
    error: Exception | None
    effect: _Effect


def _failed(error: Exception) -> _Outcome:
    return _Outcome(None, error, _Effect.NONE)


def _retry_after_seconds(until: datetime | None, now: datetime) -> int:
    if until is None:
        return 1
    return max(1, math.ceil((until - now).total_seconds()))


class TokenLifecycle:
    """Keeps OAuth access tokens fresh for the gateway.

    `cached_credentials` is the process's credential cache, given each refreshed credential;
    `reconnect_url` makes the link a person opens to re-authorize a connection.
    """

    def __init__(
        self,
        connections: ConnectionRepository,
        cached_credentials: BoundedMap[str, CredentialRecord | None],
        upstream: Client,
        policy: RefreshPolicy,
        reconnect_url: Callable[[str], str],
        *,
        clock: Clock = system_clock,
        on_step: RefreshStep | None = None,
    ) -> None:
        self._connections = connections
        self._cached = cached_credentials
        self._upstream = upstream
        self._policy = policy
        self._reconnect_url = reconnect_url
        self._clock = clock
        self._on_step = on_step
        self._inflight: dict[str, asyncio.Future[CredentialRecord]] = {}

    def refresh_deadline(self, credential: CredentialRecord) -> float:
        """When (epoch seconds) the access token falls due for refresh; inf if never."""
        expires_at = credential.expires_at
        if expires_at is None or credential.get("refresh_token") is None:
            return math.inf
        margin = refresh_margin(self._policy.margin_seconds, credential.issued_at, expires_at)
        return expires_at.timestamp() - margin

    def needs_refresh(self, credential: CredentialRecord, now: datetime | None = None) -> bool:
        """Whether the access token is due for refresh (see `refresh_margin`)."""
        deadline = self.refresh_deadline(credential)
        return deadline <= (now.timestamp() if now is not None else self._clock())

    async def ensure_fresh(
        self, app: ConfiguredApp, connection: ConnectionRecord, credential: CredentialRecord
    ) -> CredentialRecord:
        """A credential usable now: refreshed if it is due.

        A transient refresh failure while the current token is still valid keeps using it.
        """
        now = utc_now(self._clock)
        if not self.needs_refresh(credential, now):
            return credential
        expired = credential.expires_at is not None and credential.expires_at <= now
        if credential.retry_after is not None and credential.retry_after > now:
            if not expired:
                return credential
            raise self._unavailable(credential.retry_after, now)
        try:
            return await self.refresh(app, connection, credential.version)
        except CredentialsUnavailable:
            if not expired:
                return credential
            raise

    async def refresh(
        self, app: ConfiguredApp, connection: ConnectionRecord, seen_version: int
    ) -> CredentialRecord:
        """Refresh once for everyone waiting on this connection; raise 424/503 errors."""
        pending = self._inflight.get(connection.id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._inflight[connection.id] = pending
            try:
                outcome = await self._refresh_locked(app, connection, seen_version)
            except Exception as exc:  # the store unreachable, say: the waiters must not hang
                pending.set_exception(exc)
                pending.exception()
                raise
            finally:
                del self._inflight[connection.id]
            if outcome.error is not None:
                pending.set_exception(outcome.error)
                # Retrieve it so an unwaited future does not warn.
                pending.exception()
                raise outcome.error
            assert outcome.credential is not None
            pending.set_result(outcome.credential)
            return outcome.credential
        return await asyncio.shield(pending)

    async def _step(self, step: str, connection_id: str) -> None:
        if self._on_step is not None:
            await self._on_step(step, connection_id)

    async def _refresh_locked(
        self, app: ConfiguredApp, connection: ConnectionRecord, seen_version: int
    ) -> _Outcome:
        """Refresh under the connection's lock, then act on the committed result."""
        async with self._connections.lock_credential(connection.id) as held:
            await self._step("locked", connection.id)
            outcome = await self._refresh_held(app, connection, held, seen_version)
        # The block's end committed: a rotated refresh token is durable before anyone uses the
        # new access token.
        await self._publish(connection, outcome)
        return outcome

    async def _refresh_held(
        self,
        app: ConfiguredApp,
        connection: ConnectionRecord,
        held: HeldCredential,
        seen_version: int,
    ) -> _Outcome:
        """The refresh proper, with the lock held: check the row, ask the provider, store."""
        current = held.credential
        oauth = app.oauth()
        if current is None or oauth is None:
            return _failed(self._reauthorize(connection, "no stored credentials"))
        if current.version != seen_version:
            # Another caller, process or replica refreshed while we waited for the lock.
            return _Outcome(current, None, _Effect.STORED)
        now = utc_now(self._clock)
        if current.retry_after is not None and current.retry_after > now:
            # Another process's refresh failed while we waited: keep to its backoff.
            return _failed(self._unavailable(current.retry_after, now))
        refresh_token = current.get("refresh_token")
        if refresh_token is None:
            return _failed(self._reauthorize(connection, "no refresh token"))
        plain = {name: secret.reveal() for name, secret in current.values.items()}
        asked = time.perf_counter()
        try:
            tokens = await request_tokens(
                self._upstream,
                app,
                oauth,
                refresh_form(refresh_token),
                self._policy.token_timeout,
                clock=self._clock,
                values=substitution_values(oauth, connection.params, plain),
            )
        except _TokenRequestFailed as error:
            metrics.observe_refresh(app.name, ok=False, seconds=time.perf_counter() - asked)
            return await self._refresh_failed(connection, held, current, error)
        metrics.observe_refresh(app.name, ok=True, seconds=time.perf_counter() - asked)
        await self._step("token_received", connection.id)
        fresh = await held.store_tokens(
            tokens.stored_values(
                previous_refresh=refresh_token,
                rotates=oauth.refresh_token_rotates,
                previous=plain,
                kept=oauth.captured_names(),
            ),
            tokens.expires_at,
            # The lifetime the margin halves: from the answer's arrival, as `expires_at` counts.
            issued_at=utc_now(self._clock),
        )
        if fresh is None:
            return await self._stored_instead(connection, held)
        return _Outcome(fresh, None, _Effect.REFRESHED)

    async def _refresh_failed(
        self,
        connection: ConnectionRecord,
        held: HeldCredential,
        current: CredentialRecord,
        error: Exception,
    ) -> _Outcome:
        """A token request that failed: permanently (the connection needs a person) or
        transiently (back off), unless the row was re-authorized meanwhile."""
        if not await held.still_current():
            # A re-authorization wrote the row while the provider answered (possible only under
            # the host lock): its tokens stand, and the old token's failure — even
            # invalid_grant — must not mark the re-authorized connection FAILED.
            return await self._stored_instead(connection, held)
        if isinstance(error, TokenResponseError) and error.error in PERMANENT_ERRORS:
            return _Outcome(None, self._reauthorize(connection, error.description), _Effect.REVOKED)
        if isinstance(error, TokenResponseError):
            log.error("refresh of %s refused: %s", connection.id, error.error)
        else:
            log.warning("refresh of %s failed transiently: %s", connection.id, error)
        failures = current.refresh_failures + 1
        now = utc_now(self._clock)
        retry_after = now + timedelta(seconds=self._policy.backoff_seconds(failures))
        backed_off = await held.record_failure(failures, retry_after, now)
        if backed_off is None:
            return await self._stored_instead(connection, held)
        return _Outcome(backed_off, self._unavailable(retry_after, now), _Effect.BACKED_OFF)

    async def _stored_instead(self, connection: ConnectionRecord, held: HeldCredential) -> _Outcome:
        """The row moved on while the provider answered (only possible under the host lock,
        which keeps other refreshes of this connection out: a re-authorization or removal
        wrote it). What was stored stands."""
        latest = await held.latest()
        if latest is None:
            return _failed(self._reauthorize(connection, "no stored credentials"))
        return _Outcome(latest, None, _Effect.STORED)

    async def _publish(self, connection: ConnectionRecord, outcome: _Outcome) -> None:
        """Act on a committed refresh: cache what is stored now, or fail the connection."""
        if outcome.effect is _Effect.REVOKED:
            await self._connections.set_status(
                connection.id,
                Status.FAILED,
                ReauthorizationRequired.code,
                "The provider refused the refresh token (revoked, expired or reused). "
                "A person must re-authorize the connection through its url.",
            )
            return
        if outcome.effect is _Effect.REFRESHED:
            await self._step("committed", connection.id)
            log.info("refreshed the access token of connection %s", connection.id)
        if outcome.credential is not None:
            self._cached.put(connection.id, outcome.credential)

    def _unavailable(self, until: datetime, now: datetime) -> CredentialsUnavailable:
        seconds = _retry_after_seconds(until, now)
        return CredentialsUnavailable(
            "The provider's token endpoint is failing; Keygate will retry the refresh. "
            f"Try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )

    def _reauthorize(
        self, connection: ConnectionRecord, reason: str | None
    ) -> ReauthorizationRequired:
        detail = f" ({reason})" if reason else ""
        return ReauthorizationRequired(
            f"The {connection.app} credentials of connection {connection.id} are no longer "
            f"valid{detail}. A person must re-authorize it: open reconnect_url.",
            extra={
                "reconnect_url": self._reconnect_url(connection.id),
                "connection_id": connection.id,
            },
        )
