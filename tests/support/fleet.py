"""A fleet: N `keygate serve` replicas on one PostgreSQL database, behind nginx, on loopback.

The nginx configuration is `deploy/nginx/keygate.conf`, the file operators install, with only
its replica addresses and its `listen` line replaced by loopback ports (see `render_nginx`);
the test wraps it in the few main-context lines nginx needs to run unprivileged in a temporary
directory. Every replica shares the database, the encryption key, the app settings and the
public URL (nginx's), as a deployment does; each has its own port and log.

    fleet = Fleet(tmp_path, fresh_database(tmp_path, "kg_fleet"), sandbox, "constant-contact")
    fleet.start()                      # 3 replicas at once (they migrate under the lock), nginx
    key, conn = fleet.prepare({"access_token": "…"}, expires_in=3600)
    httpx.get(f"{fleet.url}/constant-contact/v3/account/summary", headers=…)   # through nginx
    httpx.get(f"{fleet.replicas[1].url}/healthz")                             # one replica
    fleet.stop_replica(0)              # SIGTERM, wait for the exit; returns the exit code
    fleet.start_replica(0)             # same port, waits for /readyz
    time.sleep(fleet.fail_timeout)     # until nginx sends it requests again (a rolling restart)
    fleet.stop()                       # everything (also on a failed test: use it in a fixture)

`fleet.store()` opens a `Runtime` on the same database in the test process, for writes whose
moment the test must know (a key revoked at a measured instant). Only PostgreSQL makes sense
here: the replicas' processes share nothing else. Nothing leaves loopback; every wait is bounded.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from keygate.runtime import Runtime
from tests.support.processes import Deployment, Process, stop_process
from tests.support.sandboxes import Sandbox
from tests.support.servers import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "keygate.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_MAIN = """\
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/nginx.error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/keygate.conf;
}}
"""


def nginx_available() -> bool:
    """Whether an nginx binary is installed (`scripts/system-deps.sh test` installs one)."""
    return Path(NGINX).exists()


def render_nginx(ports: list[int], listen_port: int, template: Path = NGINX_CONF) -> str:
    """`deploy/nginx/keygate.conf` with one upstream server per replica port and a loopback
    `listen`; fails if the file no longer has the lines it replaces."""
    text = template.read_text()
    servers = list(re.finditer(r"^(\s*)server 127\.0\.0\.1:\d+( [^;]*)?;$", text, re.M))
    if not servers:
        raise AssertionError(f"{template} lists no `server 127.0.0.1:PORT …;` replica line")
    indent, options = servers[0].group(1), servers[0].group(2) or ""
    lines = "\n".join(f"{indent}server 127.0.0.1:{port}{options};" for port in ports)
    text = text[: servers[0].start()] + lines + text[servers[-1].end() :]
    listen = rf"\1listen 127.0.0.1:{listen_port};"
    text, count = re.subn(r"^(\s*)listen 80;$", listen, text, count=0, flags=re.M)
    if count != 1:
        raise AssertionError(f"{template} has no single `listen 80;` line")
    return text


@dataclass
class Replica:
    """One `keygate serve` of the fleet: its port, and its process while it runs."""

    index: int
    port: int
    process: Process | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The replica's own origin (bypassing nginx)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether its process is alive."""
        return self.process is not None and self.process.popen.poll() is None

    def output(self) -> str:
        """Everything it printed, over all its starts."""
        return "".join(log.read_text(errors="replace") for log in self.logs if log.exists())


class Fleet:
    """N replicas on one database behind nginx (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        database_url: str,
        upstream: Sandbox | ServerThread,
        app: str,
        replicas: int = 3,
        env: dict[str, str] | None = None,
        workers: int = 1,
    ) -> None:
        self.directory = directory
        self.nginx_port = free_port()
        self.deployment = Deployment(directory, database_url, upstream, app, port=self.nginx_port)
        self.replicas = [Replica(index, free_port()) for index in range(replicas)]
        self.env = dict(env or {})
        """Extra KEYGATE_* variables every replica gets (a test may change it between starts)."""
        self.workers = workers
        self._run = directory / "nginx"
        self._nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """nginx's origin: the fleet's public URL."""
        return f"http://127.0.0.1:{self.nginx_port}"

    def start(self) -> Fleet:
        """Start every replica at once (waiting until each answers /readyz), then nginx."""
        for replica in self.replicas:
            self._spawn(replica)
        try:
            failures: list[BaseException] = []

            def wait(replica: Replica) -> None:
                try:
                    self._wait_ready(replica)
                except BaseException as exc:
                    failures.append(exc)

            waits = [threading.Thread(target=wait, args=(r,), daemon=True) for r in self.replicas]
            for thread in waits:
                thread.start()
            for thread in waits:
                thread.join(90)
            if failures:
                raise failures[0]
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def prepare(self, values: dict[str, str], expires_in: int) -> tuple[str, str]:
        """A workspace, an API key and an ACTIVE connection holding `values`: (key, id)."""
        return self.deployment.prepare(values, expires_in)

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Runtime]:
        """A Runtime on the fleet's database, in the test process (its writes notify too)."""
        runtime = await Runtime.open(self.deployment.settings(), run_migrations=False)
        try:
            yield runtime
        finally:
            await runtime.close()

    def stop_replica(self, index: int, sig: int = signal.SIGTERM, within: float = 30) -> int:
        """Send `sig` to a replica and wait for it to exit; its exit code."""
        replica = self.replicas[index]
        assert replica.process is not None, f"replica {index} is not running"
        popen = replica.process.popen
        if popen.poll() is None:
            popen.send_signal(sig)
            try:
                popen.wait(within)
            except subprocess.TimeoutExpired as exc:
                stop_process(popen)
                message = f"replica {index} did not exit {within:g} s after signal {sig}"
                raise AssertionError(message) from exc
        replica.process = None
        return popen.returncode

    def start_replica(self, index: int) -> Replica:
        """Start a stopped replica again on its port and wait until it answers /readyz."""
        replica = self.replicas[index]
        assert not replica.running, f"replica {index} is running"
        self._spawn(replica)
        self._wait_ready(replica)
        return replica

    def stop(self) -> None:
        """Stop nginx and every replica (idempotent)."""
        if self._nginx is not None:
            stop_process(self._nginx)
            self._nginx = None
        for replica in self.replicas:
            if replica.process is not None:
                replica.process.stop()
                replica.process = None

    def outputs(self) -> str:
        """Every replica's output, headed by its index (for assertion messages)."""
        return "\n".join(f"--- replica {r.index}\n{r.output()[-3000:]}" for r in self.replicas)

    def _spawn(self, replica: Replica) -> None:
        keygate = str(Path(sys.executable).with_name("keygate"))
        argv = [keygate, "serve", "--workers", str(self.workers), "--port", str(replica.port)]
        env = {**self.deployment.env(), "KEYGATE_PORT": str(replica.port), **self.env}
        env["KEYGATE_PUBLIC_URL"] = self.url  # every replica is reached through nginx
        log = self.directory / f"replica-{replica.index}-{time.monotonic_ns()}.log"
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
            )
        replica.logs.append(log)
        replica.process = Process(popen, log)

    def _wait_ready(self, replica: Replica, within: float = 60) -> None:
        assert replica.process is not None
        popen = replica.process.popen
        deadline = time.monotonic() + within
        while True:
            if popen.poll() is not None:
                raise RuntimeError(f"replica {replica.index} exited early:\n{replica.output()}")
            try:
                if httpx.get(f"{replica.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"replica {replica.index} not ready in {within:g} s:\n{replica.output()}"
                )
            time.sleep(0.05)

    def _start_nginx(self) -> None:
        run = self._run
        run.mkdir(parents=True, exist_ok=True)
        # Started as root, nginx workers drop to an unprivileged user: let them use the files.
        for part in (run, *(run / sub for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"))):
            part.mkdir(exist_ok=True)
            part.chmod(0o777)
        (run / "keygate.conf").write_text(
            render_nginx([replica.port for replica in self.replicas], self.nginx_port)
        )
        (run / "nginx.conf").write_text(_MAIN.format(run=run))
        argv = [NGINX, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(run / "err.log")]
        with (run / "stderr.log").open("wb") as stderr:  # the child keeps its own copy
            self._nginx = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 15
        while True:
            if self._nginx.poll() is not None:
                raise RuntimeError(f"nginx exited: {(run / 'stderr.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer:\n{self.nginx_log()}")
            time.sleep(0.05)

    @property
    def fail_timeout(self) -> float:
        """Seconds nginx leaves a replica out after one failed connection (`fail_timeout=` on
        the `server` lines of the configuration it runs): a restarted replica gets requests
        again only that long after it went down, whatever its /readyz says."""
        text = render_nginx([replica.port for replica in self.replicas], self.nginx_port)
        found = {float(value) for value in re.findall(r"fail_timeout=(\d+(?:\.\d+)?)s\b", text)}
        if len(found) != 1:
            raise AssertionError(f"{NGINX_CONF}: expected one `fail_timeout=Ns`, found {found}")
        return found.pop()

    def nginx_log(self) -> str:
        """nginx's error log (retries and failed upstreams are logged there at `warn`)."""
        path = self._run / "nginx.error.log"
        return path.read_text(errors="replace") if path.exists() else ""
