"""Refresh storm: 500 concurrent requests on a connection whose access token has just expired.

The Klaviyo sandbox (`keygate sandbox`) is the OAuth provider, its token endpoint made slow
(`POST /_sandbox/faults {"token_endpoint": "slow", "token_delay": …}`); API calls go to the fast
nginx upstream so the 500 requests measure Keygate, not the sandbox's own request handling.
Keygate runs with `KEYGATE_REFRESH_MARGIN_SECONDS=0`, so the token is due exactly when it
expires. The contract: one refresh per connection at a time across all processes, concurrent
callers wait for it and share its result — so the sandbox must count exactly one token request.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from pyreqwest.client import ClientBuilder

BURST = 500


@dataclass
class StormResult:
    """One storm: the sandbox's token-request count and the latency of the burst."""

    label: str
    workers: int
    requests: int
    ok: int
    statuses: dict[str, int]
    token_requests: int
    token_latency_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


class SandboxAdmin:
    """The `/_sandbox/` admin API of a running sandbox."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST a JSON body to an admin endpoint."""
        response = self._http.post(f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def token_requests(self) -> int:
        """Token requests the sandbox has answered so far."""
        response = self._http.get("/_sandbox/stats")
        response.raise_for_status()
        return int(response.json()["token_requests_total"])

    def mint(self) -> dict[str, Any]:
        """A fresh access + refresh token pair."""
        return dict(self.post("tokens", {}))

    def time_token_endpoint(self, client_id: str, client_secret: str) -> float:
        """Seconds one refresh_token grant takes at the (slowed) token endpoint."""
        refresh = self.mint()["refresh_token"]
        started = time.perf_counter()
        response = self._http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh},
            auth=(client_id, client_secret),
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed

    def close(self) -> None:
        """Close the admin client."""
        self._http.close()


async def _burst(url: str, headers: list[tuple[str, str]], count: int) -> list[tuple[int, float]]:
    client = ClientBuilder().pool_max_idle_per_host(count).build()
    gate = asyncio.Event()

    async def one() -> tuple[int, float]:
        await gate.wait()
        started = time.perf_counter()
        try:
            response = await client.get(url).headers(headers).build().send()
            await response.bytes()
            status = int(response.status)
        except Exception:
            status = 0
        return status, time.perf_counter() - started

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*tasks)
    await client.close()
    return list(results)


def burst(url: str, headers: list[tuple[str, str]], count: int = BURST) -> list[tuple[int, float]]:
    """`count` concurrent GETs released together: (status, seconds) of each."""
    return asyncio.run(_burst(url, headers, count))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarise(
    label: str,
    workers: int,
    results: list[tuple[int, float]],
    token_requests: int,
    token_latency: float,
) -> StormResult:
    """Aggregate one burst."""
    seconds = [elapsed for _, elapsed in results]
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return StormResult(
        label=label,
        workers=workers,
        requests=len(results),
        ok=statuses.get("200", 0),
        statuses=statuses,
        token_requests=token_requests,
        token_latency_ms=token_latency * 1000,
        p50_ms=statistics.median(seconds) * 1000 if seconds else 0.0,
        p99_ms=percentile(seconds, 99) * 1000,
        max_ms=max(seconds) * 1000 if seconds else 0.0,
    )
