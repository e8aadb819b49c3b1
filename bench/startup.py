"""Start-up of the command line: median wall time of `keygate --help`, of a `keygate call`
through a running Keygate, and of `python -c pass` (the interpreter's own floor), in one run.

An agent runs the CLI many times, so what each run pays before doing anything counts. The call
goes through a real `keygate serve` on loopback (deployed as an operator would, see
`deploy.py`) to a small upstream in this process, with an imported connection; the gateway's
answer alone, timed from here, shows how much of the call is the server's.

    python -m bench.startup [--runs 20]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.deploy import KEYGATE, import_connection, make_deployment, serve
from bench.procs import Supervisor, free_port

TARGET_MS = 150.0
CALL_PATH = "/v3/account/summary"


@dataclass(frozen=True)
class Row:
    """One measured command: its label, median milliseconds, and target (None: reference)."""

    label: str
    median_ms: float
    target_ms: float | None

    @property
    def met(self) -> bool | None:
        """Whether the median is within the target (None for a reference row)."""
        return None if self.target_ms is None else self.median_ms <= self.target_ms


class _Upstream(BaseHTTPRequestHandler):
    """Answers every GET with a small JSON body, as an account summary would be."""

    def do_GET(self) -> None:
        body = b'{"organization_name":"Bench"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the table is the output


@contextmanager
def upstream() -> Iterator[str]:
    """A loopback upstream served from a thread; its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def median_ms(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    """The median wall time of running `argv` to completion, output discarded; it must succeed."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return statistics.median(times) * 1000


def answer_ms(port: int, key: str, runs: int) -> float:
    """The median time of the same gateway request sent from this process (no start-up)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        connection.request(
            "GET", f"/constant-contact{CALL_PATH}", headers={"Authorization": f"Bearer {key}"}
        )
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"the gateway answered {response.status}")
    connection.close()
    return statistics.median(times) * 1000


def measure(runs: int) -> list[Row]:
    """Deploy Keygate, then time each command `runs` times."""
    with tempfile.TemporaryDirectory(prefix="keygate-startup-") as scratch, upstream() as origin:
        root = Path(scratch)
        logs = root / "logs"
        logs.mkdir()
        deployment = make_deployment(
            root / "data",
            {
                "KEYGATE_APPS__CONSTANT_CONTACT__BASE_URL": origin,
                "KEYGATE_APPS__CONSTANT_CONTACT__CLIENT_ID": "bench-client",
            },
        )
        import_connection(deployment, "constant-contact", "bench-access-token")
        with Supervisor(logs) as sup:
            port = free_port()
            serve(sup, deployment, "keygate", port, workers=1)
            env = {
                **deployment.env,
                "KEYGATE_PORT": str(port),
                "KEYGATE_API_KEY": deployment.api_key,
            }
            call = [KEYGATE, "call", "constant-contact", "GET", CALL_PATH]
            median_ms(call, 2, env)  # warm: the server's first answers open its pools
            answer_ms(port, deployment.api_key, 3)
            return [
                Row("python -c pass", median_ms([sys.executable, "-c", "pass"], runs), None),
                Row("keygate --help", median_ms([KEYGATE, "--help"], runs, env), TARGET_MS),
                Row(
                    f"keygate call constant-contact GET {CALL_PATH}",
                    median_ms(call, runs, env),
                    TARGET_MS,
                ),
                Row(
                    "  of which the gateway's answer (from a warm client)",
                    answer_ms(port, deployment.api_key, runs),
                    None,
                ),
            ]


def table(rows: Sequence[Row], runs: int) -> str:
    """The rows as a plain-text table with the targets and whether each was met."""
    width = max(len(r.label) for r in rows)
    lines = [
        f"CLI start-up: median wall time of {runs} runs each",
        f"{'command':<{width}}  {'median ms':>9}  {'target ms':>9}  met",
    ]
    for row in rows:
        target = "-" if row.target_ms is None else f"{row.target_ms:.0f}"
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        lines.append(f"{row.label:<{width}}  {row.median_ms:>9.1f}  {target:>9}  {met}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args(argv)
    print(table(measure(max(1, args.runs)), args.runs))


if __name__ == "__main__":
    main()
