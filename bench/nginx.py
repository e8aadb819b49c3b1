"""nginx from Debian, twice: the fast upstream every scenario talks to, and the reference proxy.

The upstream answers any path with a ~1 KB JSON document (nginx `return`, no disk), echoes
small POST bodies on `/echo`, serves a sparse file on `/files/` for the big download, and
answers `/upload` with the byte count it received (the body is read whole before answering).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.procs import LOAD_CORE, SERVER_CORE, Started, Supervisor, pinned, wait_for_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def profile_document() -> str:
    """A ~1 KB JSON:API document shaped like a Klaviyo profile listing."""
    profiles = [
        {
            "type": "profile",
            "id": f"01HX{index:022d}",
            "attributes": {
                "email": f"person{index}@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "created": "2026-02-07T07:41:05+00:00",
            },
        }
        for index in range(5)
    ]
    body = {"data": profiles, "links": {"self": "/api/profiles", "next": None}}
    return json.dumps(body, separators=(",", ":"))


_COMMON = """
worker_processes 1;
daemon off;
master_process on;
pid {run}/{name}.pid;
error_log {run}/{name}.error.log crit;
events {{ worker_connections 4096; multi_accept on; }}
"""

# Inside `http {}` for both: temp paths in the run directory, long-lived keep-alive.
_HTTP_COMMON = """
    access_log off;
    client_body_temp_path {run}/{name}-body;
    proxy_temp_path {run}/{name}-proxy;
    fastcgi_temp_path {run}/{name}-fastcgi;
    uwsgi_temp_path {run}/{name}-uwsgi;
    scgi_temp_path {run}/{name}-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
"""

_UPSTREAM = (
    _COMMON
    + "http {{"
    + _HTTP_COMMON
    + """
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 0;
        client_body_buffer_size 1m;
        client_body_in_single_buffer on;
        default_type application/json;
        location / {{ return 200 '{document}'; }}
        location /files/ {{ alias {files}/; default_type application/octet-stream; }}
        # The body is read whole (proxy_request_buffering) by a proxy_pass to a closed port;
        # the 502 is then turned into the answer: the body itself, or its size.
        location = /echo {{ proxy_pass http://127.0.0.1:9/; error_page 502 = @echo; }}
        location = /upload {{ proxy_pass http://127.0.0.1:9/; error_page 502 = @upload; }}
        location @echo {{ return 200 $request_body; }}
        location @upload {{ return 200 '{{"request_length":$request_length}}'; }}
    }}
}}
"""
)

_PROXY = (
    _COMMON
    + "http {{"
    + _HTTP_COMMON
    + """
    upstream api {{ server 127.0.0.1:{upstream}; keepalive 256; keepalive_requests 1000000; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 0;
        location / {{
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer upstream-token";
        }}
    }}
}}
"""
)


@dataclass
class Nginx:
    """A running nginx (master + one worker)."""

    process: Started
    port: int

    @property
    def url(self) -> str:
        """Its origin."""
        return f"http://127.0.0.1:{self.port}"


def _start(sup: Supervisor, run: Path, name: str, config: str, port: int, core: int) -> Nginx:
    path = run / f"{name}.conf"
    path.write_text(config)
    # Started as root, nginx workers drop to an unprivileged user: let them read and write here.
    run.chmod(0o755)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run / f"{name}-{sub}").mkdir(exist_ok=True)
        (run / f"{name}-{sub}").chmod(0o777)
    argv = pinned(core, [NGINX, "-p", str(run), "-c", str(path), "-e", str(run / "err.log")])
    started = sup.start(name, argv)
    try:
        wait_for_port(port, 15, started.alive)
    except RuntimeError as exc:
        raise RuntimeError(f"{name} did not start: {exc}\n{started.tail()}") from exc
    return Nginx(started, port)


def start_upstream(sup: Supervisor, run: Path, port: int, files: Path) -> Nginx:
    """The fast upstream, on the load core (so the server under test has its core alone)."""
    document = profile_document().replace("'", "\\'")
    config = _UPSTREAM.format(run=run, name="upstream", port=port, document=document, files=files)
    return _start(sup, run, "upstream", config, port, LOAD_CORE)


def start_proxy(sup: Supervisor, run: Path, port: int, upstream_port: int) -> Nginx:
    """nginx as the reference reverse proxy, on the server core."""
    config = _PROXY.format(run=run, name="proxy", port=port, upstream=upstream_port)
    return _start(sup, run, "proxy", config, port, SERVER_CORE)


def worker_pids(nginx: Nginx) -> list[int]:
    """The master and worker pids of a running nginx."""
    import psutil

    master = psutil.Process(nginx.process.pid)
    return [master.pid, *(child.pid for child in master.children(recursive=True))]
