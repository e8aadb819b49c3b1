"""Reads the hot path makes on every request, served from the process cache after the first."""

from __future__ import annotations

import re
import time
from typing import Protocol

from keygate.crypto import hash_api_key
from keygate.errors import InvalidApiKey, RateLimited
from keygate.store.cache import StateCache, is_missing
from keygate.store.connections import ConnectionRepository
from keygate.store.keys import KeyRepository
from keygate.store.records import ApiKeyRecord, ConnectionRecord, CredentialRecord


class FailedLookupLimit(Protocol):
    """A per-address budget of failed key lookups (`keygate.gateway.ratelimit.AddressLimiter`)."""

    @property
    def enabled(self) -> bool:
        """Whether a limit is configured."""

    def wait(self, address: str) -> float:
        """Seconds until the address may cause another lookup (0: now)."""

    def spend(self, address: str) -> float:
        """Count a failed lookup of the address."""

    def refuse(self, message: str, wait: float) -> RateLimited:
        """The 429 for an address over its budget."""


_BEARER = "bearer "


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    if not authorization or len(authorization) < 8 or authorization[:7].lower() != _BEARER:
        return None
    token = authorization[7:].strip()
    return token or None


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_uuid(value: str) -> bool:
    """Whether `value` is a canonical (lower-case) UUID string, as connection ids are."""
    return _UUID.match(value) is not None


class CachedReads:
    """API keys, connections and credentials, from cache when possible.

    One per process: the composition code builds it and hands it to every surface that reads.
    """

    def __init__(
        self,
        keys: KeyRepository,
        connections: ConnectionRepository,
        cache: StateCache,
        unknown_keys: FailedLookupLimit | None = None,
    ) -> None:
        self._keys = keys
        self._connections = connections
        self._cache = cache
        self._unknown_keys = unknown_keys if unknown_keys and unknown_keys.enabled else None

    async def api_key(self, authorization: str | None, address: str = "") -> ApiKeyRecord:
        """The caller's key from its Authorization header; raises InvalidApiKey, or RateLimited
        when `address` (the client's) has caused too many failed lookups lately."""
        token = bearer_token(authorization)
        if token is None or len(token) > 200:
            raise InvalidApiKey
        digest = hash_api_key(token)
        cached = self._cache.keys.get(digest)
        if is_missing(cached):
            limiter = self._unknown_keys
            # A key a clear set aside was valid moments ago: its caller is not the flood, and
            # must not be locked out by one sharing its address (a proxy not yet trusted).
            if (
                limiter is not None
                and (wait := limiter.wait(address))
                and is_missing(self._cache.keys.last_good(digest))
            ):
                raise limiter.refuse(
                    "Too many requests with unknown or revoked API keys from this address.", wait
                )
            # Unknown keys are not cached (a flood of made-up keys must not fill the cache).
            found = await self._cache.load(
                self._cache.keys,
                digest,
                lambda: self._keys.find_active_key(digest),
                store_none=False,
            )
            if found is None:
                if limiter is not None:
                    limiter.spend(address)
                raise InvalidApiKey
            record = found
        else:
            assert isinstance(cached, ApiKeyRecord)
            record = cached
        self._cache.key_uses[record.id] = time.time()
        return record

    async def connection(self, workspace_id: str, connection_id: str) -> ConnectionRecord | None:
        """The connection if it exists in that workspace (another workspace's is None)."""
        if not is_uuid(connection_id):
            return None
        cached = self._cache.connections.get(connection_id)
        if is_missing(cached):
            record = await self._cache.load(
                self._cache.connections,
                connection_id,
                lambda: self._connections.get(connection_id),
            )
        else:
            record = cached  # type: ignore[assignment]
        if record is None or record.workspace_id != workspace_id:
            return None
        return record

    async def default_connection(self, workspace_id: str, app: str) -> ConnectionRecord | None:
        """The oldest ACTIVE connection of the app in the workspace."""
        key = (workspace_id, app)
        cached = self._cache.defaults.get(key)
        if is_missing(cached):
            return await self._cache.load(
                self._cache.defaults,
                key,
                lambda: self._connections.oldest_active(workspace_id, app),
            )
        return cached  # type: ignore[return-value]

    async def credentials(self, connection_id: str) -> CredentialRecord | None:
        """The decrypted credentials of a connection."""
        cached = self._cache.credentials.get(connection_id)
        if is_missing(cached):
            return await self._cache.load(
                self._cache.credentials,
                connection_id,
                lambda: self._connections.credentials(connection_id),
            )
        return cached  # type: ignore[return-value]

    def forget_connection(self, connection_id: str) -> None:
        """Drop a connection this process deleted from the cache, last good entries included."""
        self._cache.forget_connection(connection_id)
