"""The token lifecycle: refresh before expiry and after a 401, once per connection at a time.

Single flight has two layers. In a process, concurrent callers share one asyncio task. Across
processes and replicas, the refresh first takes a lock for the connection, then re-reads its
credential row: if another process already refreshed it (the version moved on), its result is
used and the provider is not called again. On PostgreSQL the lock is the row's write lock (a
no-op UPDATE in the refresh's transaction), which also excludes other replicas. On a SQLite
file (one host) it is a host lock on the connection (`store.engine.host_lock`), so the
database's single write lock is taken only after the provider has answered — and only if the
row still has the version that was read — instead of stalling every other write for as long
as the token endpoint takes.

Durability: the new token set is committed while the lock is held, before any caller sees it.
The one window no design can close is between the provider's answer and the commit: a crash
there loses a rotated refresh token the provider has already spent. The next refresh then gets
`invalid_grant` and the connection turns FAILED with `reauthorization_required` — visible, never
silently broken (README: "Token lifecycle and crash safety").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from keygate.catalog.loader import ConfiguredApp
from keygate.control.views import connect_url
from keygate.errors import CredentialsUnavailable, KeygateError, ReauthorizationRequired
from keygate.oauth.protocol import TokenResponseError, TokenSet, refresh_form
from keygate.oauth.token_endpoint import (
    OAuthClientMissing,
    TokenEndpointUnavailable,
    request_tokens,
)
from keygate.runtime import Runtime
from keygate.store.engine import host_lock
from keygate.store.records import ConnectionRecord, CredentialRecord, Status
from keygate.store.schema import Credential, utcnow

log = logging.getLogger("keygate.oauth")

RefreshStep = Callable[[str, str], Awaitable[None]]
"""Observer of refresh steps: (step, connection id). Steps: locked, token_received, committed."""

PERMANENT_ERRORS = frozenset({"invalid_grant"})


@dataclass(frozen=True, slots=True)
class _Outcome:
    credential: CredentialRecord | None
    error: Exception | None


def _retry_after_seconds(until: datetime | None, now: datetime) -> int:
    if until is None:
        return 1
    return max(1, math.ceil((until - now).total_seconds()))


class TokenLifecycle:
    """Keeps OAuth access tokens fresh for the gateway."""

    def __init__(self, runtime: Runtime, on_step: RefreshStep | None = None) -> None:
        self._rt = runtime
        self._margin_seconds = runtime.settings.refresh_margin_seconds
        self._inflight: dict[str, asyncio.Future[CredentialRecord]] = {}
        self._on_step = on_step

    def refresh_deadline(self, credential: CredentialRecord) -> float:
        """When (epoch seconds) the access token enters the refresh margin; inf if never."""
        if credential.expires_at is None or credential.get("refresh_token") is None:
            return math.inf
        return credential.expires_at.timestamp() - self._margin_seconds

    def needs_refresh(self, credential: CredentialRecord, now: datetime | None = None) -> bool:
        """Whether the access token expires within the refresh margin."""
        deadline = self.refresh_deadline(credential)
        return deadline <= (now.timestamp() if now is not None else time.time())

    async def ensure_fresh(
        self, app: ConfiguredApp, connection: ConnectionRecord, credential: CredentialRecord
    ) -> CredentialRecord:
        """A credential usable now: refreshed if it is about to expire.

        A transient refresh failure while the current token is still valid keeps using it.
        """
        if not self.needs_refresh(credential):
            return credential
        now = utcnow()
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
        oauth = app.oauth()
        repo = self._rt.connections
        async with (
            host_lock(self._rt.db.engine, connection.id) as host_locked,
            self._rt.db.sessions() as session,
            session.begin(),
        ):
            if not host_locked:
                await _update_row(session, connection.id)
            row = await session.get(Credential, connection.id, populate_existing=True)
            await self._step("locked", connection.id)
            if row is None or oauth is None:
                return _Outcome(None, self._reauthorize(connection, "no stored credentials"))
            current = repo.decrypt(row)
            if row.version != seen_version:
                # Another caller, process or replica refreshed while we waited for the lock.
                self._rt.cache.credentials.put(connection.id, current)
                return _Outcome(current, None)
            now = utcnow()
            if row.retry_after is not None and row.retry_after > now:
                return _Outcome(None, self._unavailable(row.retry_after, now))
            refresh_token = current.get("refresh_token")
            if refresh_token is None:
                return _Outcome(None, self._reauthorize(connection, "no refresh token"))
            failure: KeygateError | None = None
            permanent = False
            tokens: TokenSet | None = None
            error: Exception | None = None
            try:
                tokens = await request_tokens(
                    self._rt.upstream,
                    app,
                    oauth,
                    refresh_form(refresh_token),
                    self._rt.settings.token_timeout,
                )
            except (TokenResponseError, TokenEndpointUnavailable, OAuthClientMissing) as exc:
                error = exc
            if error is None:
                assert tokens is not None
                await self._step("token_received", connection.id)
                values = tokens.stored_values(previous_refresh=refresh_token)
                changes: dict[str, Any] = {
                    "ciphertext": self._rt.cipher.encrypt(
                        orjson.dumps(values), bound_to=connection.id
                    ),
                    "key_id": self._rt.cipher.primary_key_id,
                    "expires_at": tokens.expires_at,
                    "version": row.version + 1,
                    "refresh_failures": 0,
                    "retry_after": None,
                    "updated_at": now,
                }
                # One statement, written only if the row is still the one read (always, under
                # a row lock; with a host lock, unless a re-authorization wrote meanwhile).
                if not await _update_row(session, connection.id, row.version, changes):
                    return await self._stored_instead(session, connection)
                session.expunge(row)
                for name, value in changes.items():
                    setattr(row, name, value)
            elif host_locked and not await _update_row(session, connection.id, row.version):
                return await self._stored_instead(session, connection)
            elif isinstance(error, TokenResponseError) and error.error in PERMANENT_ERRORS:
                failure = self._reauthorize(connection, error.description)
                permanent = True
            else:
                if isinstance(error, TokenResponseError):
                    log.error("refresh of %s refused: %s", connection.id, error.error)
                else:
                    log.warning("refresh of %s failed transiently: %s", connection.id, error)
                failure = self._backoff(row, now)
            fresh = repo.decrypt(row) if failure is None else None
        # Committed: the rotated refresh token is durable before anyone uses the access token.
        if failure is None:
            assert fresh is not None
            await self._step("committed", connection.id)
            self._rt.cache.credentials.put(connection.id, fresh)
            log.info("refreshed the access token of connection %s", connection.id)
            return _Outcome(fresh, None)
        if permanent:
            await repo.set_status(
                connection.id,
                Status.FAILED,
                ReauthorizationRequired.code,
                "The provider refused the refresh token (revoked, expired or reused). "
                "A person must re-authorize the connection through its url.",
            )
        else:
            self._rt.cache.credentials.put(connection.id, repo.decrypt(row))
        return _Outcome(None, failure)

    async def _stored_instead(
        self, session: AsyncSession, connection: ConnectionRecord
    ) -> _Outcome:
        """The row moved on while the provider answered (only possible under the host lock,
        which keeps other refreshes of this connection out: a re-authorization or removal
        wrote it). What was stored stands."""
        latest = await session.get(Credential, connection.id, populate_existing=True)
        if latest is None:
            return _Outcome(None, self._reauthorize(connection, "no stored credentials"))
        current = self._rt.connections.decrypt(latest)
        self._rt.cache.credentials.put(connection.id, current)
        return _Outcome(current, None)

    def _backoff(self, row: Credential, now: datetime) -> CredentialsUnavailable:
        row.refresh_failures += 1
        settings = self._rt.settings
        delay = min(
            settings.refresh_backoff_cap,
            settings.refresh_backoff_base * 2 ** (row.refresh_failures - 1),
        )
        row.retry_after = now + timedelta(seconds=delay)
        row.updated_at = now
        return self._unavailable(row.retry_after, now)

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
        url = connect_url(self._rt.settings.public_url, self._rt.cipher, connection.id)
        detail = f" ({reason})" if reason else ""
        return ReauthorizationRequired(
            f"The {connection.app} credentials of connection {connection.id} are no longer "
            f"valid{detail}. A person must re-authorize it: open reconnect_url.",
            extra={"reconnect_url": url, "connection_id": connection.id},
        )


async def _update_row(
    session: AsyncSession,
    connection_id: str,
    version: int | None = None,
    changes: dict[str, Any] | None = None,
) -> bool:
    """UPDATE the credential row with `changes` — by default none, which only takes its write
    lock (a row lock on PostgreSQL, the database write lock on SQLite) — if it still has
    `version` when one is given; whether a row was updated."""
    statement = update(Credential).where(Credential.connection_id == connection_id)
    if version is not None:
        statement = statement.where(Credential.version == version)
    result = await session.execute(
        statement.values(changes or {"version": Credential.version}),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))
