"""Instructions per request under valgrind: Keygate and bare compared without the machine's noise.

Throughput on a shared 2-core machine moves by ±20 % between 2-s turns, which hides any change
smaller than that. The number of CPU instructions a server process executes per request does
not depend on how busy the machine is. Each server (bare, Keygate, Keygate without its access
log) runs under `valgrind --tool=cachegrind --cache-sim=no` (it counts every instruction of
every thread, nothing else), serves `few` and then, in a second run, `many` sequential
keep-alive GETs from the same upstream; the difference of the worker process's totals divided
by `many - few` is its cost per request, start-up excluded.

Sequential requests (one connection) keep the count repeatable (±1-2 % between runs); they
are not the 64-connection load of the main table, where the event loop batches more work per
wake-up, so read the ratio as "what Keygate's features add per request", not as a throughput.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.deploy import KEYGATE, Deployment
from bench.procs import SERVER_CORE, Started, Supervisor, free_port, pinned, wait_for_port

VALGRIND = "valgrind"
_COMMAND = re.compile(r"^==(\d+)== Command:", re.MULTILINE)
_PARENT = re.compile(r"^==\d+== Parent PID: (\d+)", re.MULTILINE)
_REFS = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)", re.MULTILINE)


@dataclass
class Count:
    """One server's instructions per request."""

    label: str
    few: int
    many: int
    instructions_few: int
    instructions_many: int

    @property
    def per_request(self) -> float:
        """Instructions of the worker process per request."""
        return (self.instructions_many - self.instructions_few) / (self.many - self.few)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {**asdict(self), "per_request": round(self.per_request)}


def available() -> bool:
    """Whether valgrind is installed (`scripts/system-deps.sh bench` installs it)."""
    return shutil.which(VALGRIND) is not None


def worker_instructions(logs: Sequence[Path]) -> int:
    """The instruction total of the one process whose parent is also in `logs` (the worker).

    `valgrind --trace-children=yes --log-file=…%p` writes one log per process: granian's main
    process and the worker it spawns. The worker is the one whose parent also left a log.
    """
    found: dict[int, tuple[int, int | None]] = {}
    for log in logs:
        text = log.read_text(errors="replace")
        command, parent = _COMMAND.search(text), _PARENT.search(text)
        if command is None or parent is None:
            continue
        refs = _REFS.search(text)
        total = int(refs.group(1).replace(",", "")) if refs else None
        found[int(command.group(1))] = (int(parent.group(1)), total)
    workers = [total for parent, total in found.values() if parent in found]
    if len(workers) != 1 or workers[0] is None:
        raise RuntimeError(f"expected one finished worker in {len(logs)} valgrind logs: {found}")
    return workers[0]


def sequential_gets(port: int, path: str, headers: dict[str, str], count: int) -> None:
    """`count` GETs one after another on one keep-alive connection; each must answer 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(count):
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}")
    finally:
        connection.close()


@dataclass
class Server:
    """How to start one server under test and what to ask it."""

    label: str
    argv: list[str]
    env: dict[str, str] | None
    port: int
    path: str
    headers: dict[str, str]


def _run_once(sup: Supervisor, run_dir: Path, server: Server, count: int) -> int:
    logs = run_dir / f"valgrind-{server.label}-{count}"
    logs.mkdir(parents=True, exist_ok=True)
    command = [
        VALGRIND,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        "--trace-children=yes",
        f"--log-file={logs}/%p.log",
        *server.argv,
    ]
    started = sup.start(logs.name, pinned(SERVER_CORE, command), env=server.env)
    try:
        wait_for_port(server.port, 300, started.alive)
        _wait_until_answering(server, started)
        sequential_gets(server.port, server.path, server.headers, count)
    finally:
        _stop_gracefully(sup, started)
    return worker_instructions(sorted(logs.glob("*.log")))


def _wait_until_answering(server: Server, started: Started) -> None:
    deadline = time.monotonic() + 300
    while True:
        try:
            sequential_gets(server.port, server.path, server.headers, 1)
            return
        except (OSError, RuntimeError, http.client.HTTPException):
            if time.monotonic() > deadline or not started.alive():
                raise
            time.sleep(0.5)


def _stop_gracefully(sup: Supervisor, started: Started) -> None:
    # SIGINT to granian's main process: it stops its worker, both exit normally and valgrind
    # writes their totals. The supervisor's SIGTERM to the whole group is the fallback.
    if started.alive():
        started.popen.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            started.popen.wait(120)
    sup.stop(started)


def count(sup: Supervisor, run_dir: Path, server: Server, few: int, many: int) -> Count:
    """Instructions per request of one server, from a run with `few` and one with `many`."""
    low = _run_once(sup, run_dir, server, few)
    high = _run_once(sup, run_dir, server, many)
    return Count(server.label, few, many, low, high)


def bare_argv(port: int, upstream: str) -> list[str]:
    """The bare pass-through, one worker."""
    return [sys.executable, "-m", "bench.bare", "--port", str(port), "--upstream", upstream]


def keygate_argv(port: int) -> list[str]:
    """`keygate serve` with one worker."""
    return [KEYGATE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def measure_all(
    sup: Supervisor,
    run_dir: Path,
    upstream: str,
    deployment: Deployment,
    few: int = 200,
    many: int = 3200,
) -> list[Count]:
    """bare, Keygate, and Keygate with the access log off."""
    headers = {
        "Authorization": f"Bearer {deployment.api_key}",
        "Maton-Connection": deployment.connection_id,
    }
    port = free_port()
    servers = [Server("bare", bare_argv(port, upstream), None, port, "/api/profiles", headers)]
    for label, extra in (
        ("keygate", {}),
        ("keygate-no-access-log", {"KEYGATE_ACCESS_LOG": "false"}),
    ):
        port = free_port()
        env = {**deployment.env, "KEYGATE_PUBLIC_URL": f"http://127.0.0.1:{port}", **extra}
        servers.append(
            Server(label, keygate_argv(port), env, port, "/klaviyo/api/profiles", headers)
        )
    return [count(sup, run_dir, server, few, many) for server in servers]
