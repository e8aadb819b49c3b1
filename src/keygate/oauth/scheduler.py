"""Proactive refresh: OAuth tokens kept fresh in the background, whether or not anyone calls.

Two kinds of connection are refreshed without traffic:

- an access token that is due (the lifecycle's margin: `KEYGATE_REFRESH_MARGIN_SECONDS`, at
  most half the token's lifetime), so the next request finds a fresh token;
- a refresh token about to age out at a provider that expires unused ones: the app's catalog
  says `refresh_token_idle_days`, and a connection whose tokens were last obtained longer ago
  than nine tenths of that is refreshed, which uses the refresh token.

Every process runs a scheduler; each due connection is claimed in the database by exactly one
of them (`store/refresh_claims.py`), so a fleet refreshes it once. The refresh itself is the
gateway's (`TokenLifecycle.refresh`): the same single flight, lock, backoff and FAILED marking
on `invalid_grant`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from keygate.catalog.loader import ConfiguredApp
from keygate.clock import Clock, system_clock, utc_now
from keygate.errors import CredentialsUnavailable, ReauthorizationRequired, StoreUnavailable
from keygate.oauth.lifecycle import TokenLifecycle
from keygate.settings import Settings
from keygate.store.refresh_claims import Claimed, RefreshClaims

log = logging.getLogger("keygate.oauth")

IDLE_SHARE = 0.9
"""A refresh token is used once this share of the app's `refresh_token_idle_days` has passed."""

REST = timedelta(days=1)
"""How long a claimed row with nothing to refresh (no refresh token) is left alone."""

_JITTER = 0.2


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    """When and how much the scheduler refreshes."""

    interval: float
    concurrency: int
    batch: int
    margin_seconds: float
    lease_seconds: float
    """How long a claim lasts if its process dies before releasing it: long enough for a whole
    batch whose every token request takes the full token timeout."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulePolicy:
        """The policy the `KEYGATE_PROACTIVE_REFRESH_*` settings give."""
        batch = settings.proactive_refresh_batch
        concurrency = settings.proactive_refresh_concurrency
        rounds = math.ceil(batch / concurrency)
        return cls(
            interval=settings.proactive_refresh_interval,
            concurrency=concurrency,
            batch=batch,
            margin_seconds=settings.refresh_margin_seconds,
            lease_seconds=settings.token_timeout * (rounds + 1) + 30,
        )


@dataclass
class RunResult:
    """What one pass of the scheduler did."""

    claimed: int = 0
    """Connections this process claimed and tried to refresh."""
    refreshed: int = 0
    """Of those, the ones that now hold new tokens (this process's, or another's if the
    on-demand path was quicker)."""
    failed: int = 0


class RefreshScheduler:
    """Finds due connections, claims them, and refreshes them through the token lifecycle.

    `apps` is the process's configured apps (updated in place on reload), read on each pass.
    """

    def __init__(
        self,
        claims: RefreshClaims,
        lifecycle: TokenLifecycle,
        apps: Mapping[str, ConfiguredApp],
        policy: SchedulePolicy,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self._claims = claims
        self._lifecycle = lifecycle
        self._apps = apps
        self._policy = policy
        self._clock = clock
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._random = random.Random()  # jitter, not a secret
        self._stopping = asyncio.Event()

    def _pause(self) -> float:
        # Jitter keeps the replicas (and workers) of a fleet from looking all at once.
        spread = 1 + self._random.uniform(-_JITTER, _JITTER)
        return self._policy.interval * spread

    def stop(self) -> None:
        """Start no more refreshes; `run` returns once those under way are stored.

        Cancelling a refresh instead could lose a rotated refresh token: the provider may
        already have spent the old one when the new one is not stored yet.
        """
        self._stopping.set()

    async def _wait(self, seconds: float) -> bool:
        """Sleep, unless asked to stop meanwhile; whether to go on."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def run(self) -> None:
        """Until `stop`: a pass every interval (jittered), the first after a random share of one."""
        going = await self._wait(self._random.uniform(0, self._policy.interval))
        while going:
            try:
                await self.run_once()
            except StoreUnavailable:
                pass  # an outage: logged once by the store; the next pass tries again
            except Exception:  # a bug: say so, and keep the schedule
                log.exception("background refresh pass failed")
            going = await self._wait(self._pause())

    async def run_once(self) -> RunResult:
        """One pass: claim and refresh batches until nothing due is left unclaimed."""
        now = utc_now(self._clock)
        until = now + timedelta(seconds=self._policy.lease_seconds)
        result = RunResult()
        seen: set[str] = set()
        policy = self._policy
        while not self._stopping.is_set():
            batch = await self._claims.claim_expiring(
                now, policy.margin_seconds, until, policy.batch
            )
            if not await self._refresh_batch(batch, seen, result):
                break
        cutoffs = self._idle_cutoffs(now)
        while not self._stopping.is_set():
            batch = await self._claims.claim_idle(now, cutoffs, until, policy.batch)
            if not await self._refresh_batch(batch, seen, result):
                break
        if result.claimed:
            log.info(
                "background refresh: claimed %d connection(s), %d refreshed, %d failed",
                result.claimed,
                result.refreshed,
                result.failed,
            )
        return result

    def _idle_cutoffs(self, now: datetime) -> dict[str, datetime]:
        cutoffs = {}
        for name, app in self._apps.items():
            oauth = app.oauth()
            if oauth is not None and oauth.refresh_token_idle_days is not None:
                cutoffs[name] = now - timedelta(days=oauth.refresh_token_idle_days * IDLE_SHARE)
        return cutoffs

    async def _refresh_batch(self, batch: list[Claimed], seen: set[str], result: RunResult) -> bool:
        """Refresh a claimed batch; whether another batch may follow (this one was full and
        brought connections not handled yet in this pass)."""
        fresh = [held for held in batch if held.connection.id not in seen]
        seen.update(held.connection.id for held in batch)
        try:
            idle = [held for held in fresh if not self._refreshable(held)]
            await self._claims.rest(idle, utc_now(self._clock) + REST)
            work = [held for held in fresh if self._refreshable(held)]
            outcomes = await asyncio.gather(*(self._refresh(held) for held in work))
        finally:
            await self._claims.release(batch)
        result.claimed += len(outcomes)
        result.refreshed += sum(outcomes)
        result.failed += len(outcomes) - sum(outcomes)
        return len(batch) == self._policy.batch and bool(fresh)

    def _refreshable(self, held: Claimed) -> bool:
        app = self._apps.get(held.connection.app)
        return (
            app is not None
            and app.oauth() is not None
            and held.credential.get("refresh_token") is not None
        )

    async def _refresh(self, held: Claimed) -> bool:
        """Refresh one claimed connection; whether it got new tokens (or someone else's)."""
        app = self._apps[held.connection.app]
        async with self._slots:
            if self._stopping.is_set():
                return False  # not started: its claim is released with the batch's
            try:
                await self._lifecycle.refresh(app, held.connection, held.credential.version)
            except ReauthorizationRequired:
                # On invalid_grant the lifecycle has marked the connection FAILED, with its
                # error; otherwise its credentials went away meanwhile (deleted, say).
                log.warning(
                    "background refresh of %s: a person must re-authorize the connection",
                    held.connection.id,
                )
                return False
            except (CredentialsUnavailable, StoreUnavailable):
                return False  # transient: logged (and backed off) by the lifecycle or the store
            except Exception:  # a bug: say so, and go on with the others
                log.exception("background refresh of %s failed", held.connection.id)
                return False
        return True
