"""Processes the harness starts: pinned to a core, waited for, and always cleaned up.

Every process is started in its own session (process group) and registered with a
`Supervisor`; leaving the supervisor's `with` block, an exception, SIGINT or SIGTERM stops
them all (SIGTERM to the group, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

LOAD_CORE = 0
"""The core wrk, the harness's own clients and the upstream nginx run on."""
SERVER_CORE = 1
"""The core the server under test runs on, alone."""


def pinned(core: int, argv: Sequence[str]) -> list[str]:
    """`argv` wrapped in `taskset -c core`."""
    return ["taskset", "-c", str(core), *argv]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A loopback port that was free a moment ago, and the one after it (the sandboxes' pair)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free loopback ports")


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool]) -> None:
    """Block until 127.0.0.1:port accepts connections; raise if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the process meant to listen on port {port} exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} after {timeout:.0f} s")


@dataclass
class Started:
    """One process the harness started, with where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        """The end of its log, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class Supervisor:
    """Owns every process and cleanup action of a run; undoes them in reverse order."""

    log_dir: Path
    _procs: list[Started] = field(default_factory=list)
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Started:
        """Start a process in its own process group, output to `log_dir/name.log`."""
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        started = Started(name, popen, log)
        self._procs.append(started)
        return started

    def stop(self, started: Started, grace: float = 10.0) -> None:
        """Stop one process (and its group) now."""
        _stop_group(started.popen, grace)
        if started in self._procs:
            self._procs.remove(started)

    def on_exit(self, action: Callable[[], None]) -> None:
        """Run `action` when the run ends (after the processes started later are stopped)."""
        self._cleanups.append(action)

    def close(self) -> None:
        """Stop everything still running and run the cleanup actions, newest first."""
        while self._procs:
            _stop_group(self._procs.pop().popen, 10.0)
        while self._cleanups:
            action = self._cleanups.pop()
            with contextlib.suppress(Exception):
                action()

    def __enter__(self) -> Supervisor:
        self._previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def affinity(pids: Sequence[int], core: int) -> Iterator[None]:
    """Temporarily move running processes to one core (as `taskset -p` would)."""
    before = {pid: os.sched_getaffinity(pid) for pid in pids}
    for pid in pids:
        os.sched_setaffinity(pid, {core})
    try:
        yield
    finally:
        for pid, cores in before.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(pid, cores)
