"""Keygate's own rate limits: per API key (fleet-wide on PostgreSQL), per client address.

**Per key, one process (SQLite).** A token bucket per key in memory: `rate` tokens a second up
to `burst`; a request spends one or is answered 429 with `Retry-After`.

**Per key, a fleet (PostgreSQL).** Every replica must draw from one bucket per key, yet a request
must not wait on the database. So the bucket lives in a row (`rate_buckets`), and each process
*leases* tokens from it in small batches — a tenth of a second's worth (`rate / 10`, at least 1,
at most `burst`) — and spends them locally with no I/O. One statement per lease refills the row
by the database's clock and takes what it can, under the row's lock, so replicas never take the
same token and their clocks need not agree. Consequences, by design:

- never more than the configured rate plus burst is admitted fleet-wide: every admitted request
  spent a token debited from the row;
- the leases that admit requests number about ten a second per key for the whole fleet (the
  tokens they take add up to the rate, a batch is a tenth of a second's), whatever the rate and
  the traffic: the database load does not grow with requests;
- a process leases the next batch in the background when its batch runs low, so a steady
  stream of requests rarely waits for one (a request waits only when its process holds none);
- tokens a process holds but does not spend are lost to the others (at most a batch and a half
  per process and key): a small, bounded under-admission, not an over-admission;
- when the row is empty the process refuses that key locally, without asking again, until a
  batch could have refilled and at least a tenth of a second has passed — so a caller hammering
  past its limit costs the database at most ten queries a second per process;
- if the database cannot be reached, each process falls back to a local bucket of the same
  rate (the limit is then per process, as without a fleet) rather than refusing everything.

The alternatives were worse for this shape: a query per request is the load the cache exists to
avoid; dividing the rate by the replica count needs the count and starves keys whose traffic
lands on one replica; a separate counter service (Redis) is a new required dependency, which
PostgreSQL's one-statement lease makes unnecessary at these rates.

**Per client address.** `AddressLimiter` buckets requests by the caller's address: the control
plane's requests, and — on both surfaces — lookups of API keys the cache does not hold that turn
out unknown or revoked, so a flood of made-up keys cannot turn into a flood of database queries
(a valid key is looked up once per cache clear, and only failed lookups spend a token, so callers
with valid keys are not held back). Behind a proxy, set `KEYGATE_TRUSTED_PROXIES` so the
address is the client's (the last `X-Forwarded-For` entry), not the proxy's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from keygate import metrics
from keygate.errors import RateLimited, StoreUnavailable
from keygate.store.ratelimits import RateBuckets

log = logging.getLogger("keygate.gateway")

_MIN_REFUSAL = 0.1
"""Seconds a process refuses a key locally after finding its shared bucket empty, at least."""


class TokenBuckets:
    """Token buckets by key, in memory: `rate` tokens a second up to `burst`; bounded in size
    (past `max_keys` they are all forgotten, i.e. full again, so hostile keys cannot grow it)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(rate)))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys

    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds until `key` has a token (0: it has one now); spends nothing."""
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, moment))
        tokens = min(self.burst, tokens + (moment - last) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def spend(self, key: str, now: float | None = None) -> float:
        """Spend a token of `key`: 0 if it had one, else the seconds until it will (unspent)."""
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, moment))
        tokens = min(self.burst, tokens + (moment - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, moment)
            return (1 - tokens) / self.rate
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1, moment)
        return 0.0


def _over_key_limit(rate: float, wait: float) -> RateLimited:
    metrics.count_rate_limit_refusal("key")
    seconds = max(1, math.ceil(wait))
    return RateLimited(
        f"This API key is over Keygate's limit of {rate:g} requests per second. "
        f"Retry in {seconds} s.",
        headers={"Retry-After": str(seconds)},
    )


class KeyRateLimiter:
    """The per-key limit of one process: `take` admits or raises RateLimited."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self._buckets = TokenBuckets(rate, burst, max_keys)

    @property
    def enabled(self) -> bool:
        """Whether a limit is configured."""
        return self._buckets.rate > 0

    def take(self, key_id: str) -> bool:
        """Spend a token for this key (True) or raise RateLimited with Retry-After."""
        wait = self._buckets.spend(key_id)
        if wait:
            raise _over_key_limit(self._buckets.rate, wait)
        return True

    async def admit(self, key_id: str) -> None:
        """The same as `take` (the interface the fleet limiter needs)."""
        self.take(key_id)

    def check(self, key_id: str, now: float | None = None) -> None:
        """Spend a token for this key or raise RateLimited with Retry-After."""
        wait = self._buckets.spend(key_id, now)
        if wait:
            raise _over_key_limit(self._buckets.rate, wait)


@dataclass(slots=True)
class _Pool:
    """What this process holds of one key's fleet-wide budget."""

    tokens: int = 0
    leasing: asyncio.Task[bool] | None = None
    """The lease in flight; its result says whether the database answered."""
    waiting: int = 0
    """Requests waiting for this pool's next lease."""
    refused_until: float = 0.0
    """Monotonic moment before which the shared bucket cannot hold a batch: refuse locally."""


class FleetRateLimiter:
    """The per-key limit shared by every process on one PostgreSQL (see the module docstring).

    `take(key)` is the hot path's step: True when a leased token was spent (no await, no I/O);
    False when this process holds none, and then `await admit(key)` leases (shared by concurrent
    requests of the key) and admits or raises RateLimited.
    """

    def __init__(
        self, rate: float, burst: int, buckets: RateBuckets, max_keys: int = 100_000
    ) -> None:
        self._rate = rate
        self._burst = float(burst or max(1, math.ceil(rate)))
        self._batch = max(1, min(int(self._burst), math.ceil(rate / 10)))
        self._low = self._batch // 2
        self._buckets = buckets
        self._fallback = KeyRateLimiter(rate, burst, max_keys)
        self._pools: dict[str, _Pool] = {}
        self._max_keys = max_keys

    @property
    def enabled(self) -> bool:
        """Whether a limit is configured."""
        return self._rate > 0

    def take(self, key_id: str) -> bool:
        """Spend a leased token (True), or say that `admit` must decide (False)."""
        pool = self._pools.get(key_id)
        if pool is None or pool.tokens <= 0:
            return False
        pool.tokens -= 1
        if pool.tokens <= self._low and pool.leasing is None:
            # Running low: the next batch is fetched while this one is spent.
            pool.leasing = asyncio.create_task(self._lease(pool, key_id))
        return True

    async def admit(self, key_id: str) -> None:
        """Admit a request of a key this process holds no token for, or raise RateLimited."""
        pool = self._pools.get(key_id)
        if pool is None:
            if len(self._pools) >= self._max_keys:
                self._pools = {k: p for k, p in self._pools.items() if p.leasing is not None}
            pool = self._pools[key_id] = _Pool()
        pool.waiting += 1
        try:
            # Each turn either spends a token, or waits for a lease that takes one for every
            # request waiting (a batch at least); a lease that finds the bucket empty sets
            # `refused_until`, which ends the loop with a 429.
            while True:
                if pool.tokens > 0:
                    pool.tokens -= 1
                    return
                wait = pool.refused_until - time.monotonic()
                if wait > 0:
                    raise _over_key_limit(self._rate, wait)
                if pool.leasing is None:
                    pool.leasing = asyncio.create_task(self._lease(pool, key_id))
                if not await asyncio.shield(pool.leasing):
                    # The database is unreachable: this process limits the key on its own.
                    self._fallback.check(key_id)
                    return
        finally:
            pool.waiting -= 1

    async def _lease(self, pool: _Pool, key_id: str) -> bool:
        """Lease a batch into the pool; whether the database answered."""
        try:
            want = min(int(self._burst), max(self._batch, pool.waiting))
            lease = await self._buckets.lease(key_id, want, self._rate, self._burst)
        except StoreUnavailable:
            return False  # an outage, logged once by the store
        except Exception:
            log.exception("rate-limit lease failed")
            return False
        finally:
            pool.leasing = None
        pool.tokens += lease.granted
        if lease.granted == 0:
            # Empty: ask again only once a whole batch could be there.
            wait = max(_MIN_REFUSAL, (self._batch - lease.left) / self._rate)
            pool.refused_until = time.monotonic() + wait
        elif lease.granted < want:
            # It took what was left: the rest of those waiting are refused until more is there.
            pool.refused_until = time.monotonic() + (1 - lease.left) / self._rate
        return True

    async def close(self) -> None:
        """Wait for leases in flight (their tokens are simply not spent)."""
        for pool in list(self._pools.values()):
            if pool.leasing is not None:
                await pool.leasing


class AddressLimiter:
    """Requests by client address, in memory per process: `rate` a second up to `burst`."""

    def __init__(self, rate: float, burst: int, trusted_proxies: Iterable[str] = ()) -> None:
        self._buckets = TokenBuckets(rate, burst) if rate > 0 else None
        self._trusted = [ipaddress.ip_network(net, strict=False) for net in trusted_proxies]

    @property
    def enabled(self) -> bool:
        """Whether a limit is configured."""
        return self._buckets is not None

    def address(self, scope: dict[str, object]) -> str:
        """The client's address: the peer, or behind a trusted proxy the last address that proxy
        appended to X-Forwarded-For."""
        client = scope.get("client")
        peer = str(client[0]) if isinstance(client, (tuple, list)) and client else ""
        if not self._trusted or not peer:
            return peer
        try:
            trusted = any(ipaddress.ip_address(peer) in net for net in self._trusted)
        except ValueError:
            return peer
        if not trusted:
            return peer
        headers = scope.get("headers")
        forwarded = ""
        if isinstance(headers, list):
            for name, value in headers:
                if name == b"x-forwarded-for":
                    forwarded = value.decode("latin-1")  # the last header wins
        last = forwarded.rsplit(",", 1)[-1].strip()
        return last or peer

    def wait(self, address: str) -> float:
        """Seconds until the address may send again (0: now); spends nothing."""
        return 0.0 if self._buckets is None else self._buckets.wait(address)

    def spend(self, address: str) -> float:
        """Spend one of the address's tokens: 0, or the seconds until it has one (unspent)."""
        return 0.0 if self._buckets is None else self._buckets.spend(address)

    def refuse(self, message: str, wait: float) -> RateLimited:
        """The 429 for an address over its limit."""
        metrics.count_rate_limit_refusal("address")
        seconds = max(1, math.ceil(wait))
        return RateLimited(
            f"{message} Retry in {seconds} s.", headers={"Retry-After": str(seconds)}
        )
