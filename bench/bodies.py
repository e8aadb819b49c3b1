"""Big bodies through Keygate: a 1 GB download and a 200 MB upload, with the workers' peak RSS.

The client is curl (pinned to the load core) so the client is never the bottleneck. Peak RSS is
taken two ways: the kernel's high-water mark (VmHWM, reset first through /proc/PID/clear_refs)
and a 10 ms RSS sampler as a cross-check where the reset is not permitted.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.procs import LOAD_CORE, pinned

MB = 1024 * 1024
GB = 1024 * MB


@dataclass
class Transfer:
    """One big transfer and the memory it cost the serving process."""

    label: str
    bytes_moved: int
    expected: int
    status: int
    seconds: float
    mb_per_s: float
    rss_before_mb: float
    peak_rss_mb: float
    growth_mb: float
    ok: bool

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def sparse_file(path: Path, size: int) -> Path:
    """A file of `size` zero bytes that takes no disk space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def _reset_peak(pid: int) -> bool:
    # Writing 5 resets VmHWM to the current RSS (Linux ≥ 4.0).
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            kib: int = int(line.split()[1])
            return kib
    return 0


class _RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._process = psutil.Process(pid)
        self._done = threading.Event()
        self.peak = self._process.memory_info().rss

    def run(self) -> None:
        while not self._done.wait(0.01):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self._process.memory_info().rss)

    def stop(self) -> int:
        self._done.set()
        self.join(5)
        return self.peak


def _curl(argv: list[str], timeout: float) -> tuple[int, int, float]:
    done = subprocess.run(
        pinned(LOAD_CORE, ["curl", "-sS", "-H", "Expect:", *argv]),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        size, status, seconds = done.stdout.split()[-3:]
        return int(float(size)), int(status), float(seconds)
    except ValueError as exc:
        raise RuntimeError(f"curl failed: {done.stdout}{done.stderr}") from exc


def _measured(label: str, worker: int, expected: int, argv: list[str]) -> Transfer:
    before = psutil.Process(worker).memory_info().rss
    reset = _reset_peak(worker)
    sampler = _RssSampler(worker)
    sampler.start()
    try:
        moved, status, seconds = _curl(argv, timeout=240)
    finally:
        sampled = sampler.stop()
    peak = max(sampled, _peak_kib(worker) * 1024 if reset else 0)
    return Transfer(
        label=label,
        bytes_moved=moved,
        expected=expected,
        status=status,
        seconds=seconds,
        mb_per_s=moved / MB / seconds if seconds else 0.0,
        rss_before_mb=before / MB,
        peak_rss_mb=peak / MB,
        growth_mb=(peak - before) / MB,
        ok=status == 200 and moved == expected,
    )


def download(url: str, headers: list[str], worker: int, size: int) -> Transfer:
    """GET `url` (a `size`-byte file) through Keygate into /dev/null."""
    argv = [*headers, "-o", "/dev/null", "-w", "%{size_download} %{http_code} %{time_total}", url]
    return _measured(f"download {size // MB} MB", worker, size, argv)


def upload(url: str, headers: list[str], worker: int, source: Path) -> Transfer:
    """POST a file through Keygate to the upstream's /upload, which answers the bytes it got."""
    size = source.stat().st_size
    out = source.with_suffix(".answer")
    argv = [
        *headers,
        "-X",
        "POST",
        "-T",
        str(source),
        "-o",
        str(out),
        "-w",
        "%{size_upload} %{http_code} %{time_total}",
        url,
    ]
    result = _measured(f"upload {size // MB} MB", worker, size, argv)
    # The upstream counts what reached it (request line and headers included, so ≥ size).
    with contextlib.suppress(OSError, ValueError, KeyError):
        import json

        received = int(json.loads(out.read_text())["request_length"])
        result.ok = result.ok and received >= size
    return result


def curl_headers(api_key: str, connection_id: str) -> list[str]:
    """curl -H arguments for a Keygate request on one connection."""
    return ["-H", f"Authorization: Bearer {api_key}", "-H", f"Maton-Connection: {connection_id}"]


def wait_quiet(seconds: float = 0.5) -> None:
    """Let the server settle between transfers."""
    time.sleep(seconds)
