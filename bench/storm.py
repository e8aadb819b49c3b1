"""Refresh storm: 500 concurrent requests on a connection whose access token has just expired.

The Klaviyo sandbox (`keygate sandbox`) is the OAuth provider, its token endpoint made slow
(`POST /_sandbox/faults {"token_endpoint": "slow", "token_delay": …}`); API calls go to the fast
nginx upstream so the 500 requests measure Keygate, not the sandbox's own request handling.
Keygate runs with `KEYGATE_REFRESH_MARGIN_SECONDS=0`, so the token is due exactly when it
expires. The contract: one refresh per connection at a time across all processes, concurrent
callers wait for it and share its result — so the sandbox must count exactly one token request.
"""

from __future__ import annotations

import math
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

BURST = 500

EXPIRED = "expired token"
FRESH = "fresh token (baseline)"
CLIENT_FLOOR = "direct to upstream (client floor)"
STACK_FLOOR = "bare pass-through, no refresh (stack floor)"


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


H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"


def burst(
    url: str, headers: list[tuple[str, str]], log: Path, count: int = BURST
) -> list[tuple[int, float]]:
    """`count` concurrent GETs, one per connection, started together: (status, seconds) of each.

    The client is h2load (nghttp2, C): a Python client on the load core took 65 to 95 ms for a
    500-request burst straight to nginx, more than the bound under test leaves for forwarding;
    h2load takes 25 to 30 ms. Each request is timed from its first byte written to its response's
    last byte read, as h2load's per-request log records it; requests missing from the log (a
    refused connection, a reset) count as failed, taking the whole burst's time.
    """
    log.unlink(missing_ok=True)
    argv = [H2LOAD, "--h1", "-n", str(count), "-c", str(count), "-t", "1", "--log-file", str(log)]
    for name, value in headers:
        argv += ["-H", f"{name}: {value}"]
    started = time.perf_counter()
    subprocess.run([*argv, url], capture_output=True, check=False, timeout=120)
    elapsed = time.perf_counter() - started
    return parse_h2load_log(log.read_text() if log.exists() else "", count, elapsed)


def parse_h2load_log(text: str, count: int, elapsed: float) -> list[tuple[int, float]]:
    """(status, seconds) per row of h2load's `--log-file` (start µs, status, duration µs).

    Rows short of `count` are requests that never completed: status 0 after `elapsed` seconds.
    """
    rows = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            rows.append((int(fields[1]), int(fields[2]) / 1e6))
    return rows + [(0, elapsed)] * max(0, count - len(rows))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = math.ceil(q * len(ordered) / 100)  # 1-based: the smallest value with q % at or below
    return ordered[max(0, min(len(ordered), rank) - 1)]


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


def floor_notes(runs: list[dict[str, Any]]) -> list[str]:
    """Each storm's p99 set against the token's latency and the bare stack's p99 on the burst.

    The bound (token + 50 ms) leaves 50 ms for everything but the token request: accepting 500
    new connections and forwarding 500 requests. The stack floor row is what the server and
    client stack take for exactly that, with no refresh to wait for.
    """
    stack = next((r for r in runs if r["label"] == STACK_FLOOR), None)
    notes = []
    for run in (r for r in runs if r["label"] == EXPIRED):
        beyond = run["p99_ms"] - run["token_latency_ms"]
        note = (
            f"Refresh storm {run['workers']}w: p99 {run['p99_ms']:.0f} ms = the token's "
            f"{run['token_latency_ms']:.0f} ms + {beyond:.0f} ms"
        )
        if stack is not None:
            note += (
                f"; the same burst through the bare pass-through, with no refresh at all, "
                f"has p99 {stack['p99_ms']:.0f} ms, against the 50 ms the bound leaves for it"
            )
        notes.append(note + ".")
    return notes
