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
import resource
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

from bench.deploy import KEYGATE, Deployment, import_connection, make_deployment
from bench.procs import Supervisor, free_port, wait_for_port

TARGET_MS = 150.0
CALL_PATH = "/v3/account/summary"


@dataclass(frozen=True)
class Row:
    """One measured command: label, median wall and CPU milliseconds, target (None: reference).

    The target is on wall time, what a caller waits; CPU time (user + system of the command's
    process) barely moves when other work shares the machine, so it shows what a loaded run's
    wall time would be on a quiet one.
    """

    label: str
    median_ms: float
    target_ms: float | None
    cpu_ms: float | None = None

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


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(
    label: str,
    argv: Sequence[str],
    runs: int,
    target_ms: float | None,
    env: dict[str, str] | None = None,
) -> Row:
    """Run `argv` to completion `runs` times (it must succeed): median wall and CPU time."""
    wall, cpu = [], []
    for _ in range(runs):
        cpu_before, started = _children_cpu(), time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)
        wall.append(time.perf_counter() - started)
        cpu.append(_children_cpu() - cpu_before)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return Row(label, statistics.median(wall) * 1000, target_ms, statistics.median(cpu) * 1000)


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


def serve(sup: Supervisor, deployment: Deployment, port: int) -> None:
    """`keygate serve` with one worker, not pinned: the CLI and the server share both cores."""
    argv = [KEYGATE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    started = sup.start("keygate", argv, env=deployment.env)
    try:
        wait_for_port(port, 60, started.alive)
    except RuntimeError as exc:
        raise RuntimeError(f"keygate serve did not start: {exc}\n{started.tail()}") from exc


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
            serve(sup, deployment, port)
            env = {
                **deployment.env,
                "KEYGATE_PORT": str(port),
                "KEYGATE_API_KEY": deployment.api_key,
            }
            call = [KEYGATE, "call", "constant-contact", "GET", CALL_PATH]
            timed("warm-up", call, 2, None, env)  # the server's first answers open its pools
            answer_ms(port, deployment.api_key, 3)
            return [
                timed("python -c pass", [sys.executable, "-c", "pass"], runs, None),
                timed("keygate --help", [KEYGATE, "--help"], runs, TARGET_MS, env),
                timed(f"keygate call constant-contact GET {CALL_PATH}", call, runs, TARGET_MS, env),
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
        f"{'command':<{width}}  {'median ms':>9}  {'target ms':>9}  met  {'cpu ms':>6}",
    ]
    for row in rows:
        target = "-" if row.target_ms is None else f"{row.target_ms:.0f}"
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        cpu = "-" if row.cpu_ms is None else f"{row.cpu_ms:.1f}"
        lines.append(
            f"{row.label:<{width}}  {row.median_ms:>9.1f}  {target:>9}  {met:<3}  {cpu:>6}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args(argv)
    print(table(measure(max(1, args.runs)), args.runs))


if __name__ == "__main__":
    main()
