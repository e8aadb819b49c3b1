"""`keygate serve --sandbox`: Keygate wired to the provider sandboxes, for an offline tour.

Sandbox mode is stored, not passed in the server's environment: `serve --sandbox` writes each
sandboxed app's OAuth client and URLs into the store (what `keygate apps configure` writes), so
every process reading the same data (granian's workers, `keygate connections create --device`,
`keygate apps show` in another shell) sees the same configuration. The operator's own stored
settings for those apps are kept in `<data dir>/sandbox-mode.json` (the client secret encrypted
with the data dir's key) and put back by the next plain `keygate serve`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from keygate.catalog.loader import AppOverrides
from keygate.crypto import DecryptionError
from keygate.errors import ConfigurationError
from keygate.runtime import Runtime
from keygate.sandbox import CLIENT_ID, CLIENT_SECRET, DEFAULT_PRIVATE_KEY, SandboxConfig
from keygate.sandbox.registry import OAUTH_URL_FIELDS, sandbox_ports, sandbox_urls
from keygate.sandbox.runner import serve_sandboxes_async
from keygate.settings import Settings

MARKER_NAME = "sandbox-mode.json"
_URL_FIELDS = ("base_url", *OAUTH_URL_FIELDS)


def marker_path(settings: Settings) -> Path:
    """Where sandbox mode records the sandboxes' origins and the settings it replaced."""
    return settings.data_dir / MARKER_NAME


def _bound(app: str) -> str:
    return f"sandbox-mode:{app}"


def _snapshot(runtime: Runtime, app: str, stored: AppOverrides | None) -> dict[str, str]:
    """The app's stored settings as `apps configure` changes ('' = not set), secret encrypted."""
    current = stored or AppOverrides()
    saved = {name: getattr(current, name) or "" for name in ("client_id", *_URL_FIELDS)}
    secret = current.client_secret
    saved["client_secret"] = (
        runtime.cipher.encrypt(secret.reveal().encode(), bound_to=_bound(app)) if secret else ""
    )
    return saved


def _read_marker(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        content = json.loads(path.read_text())
        if not isinstance(content, dict) or not isinstance(content.get("previous"), dict):
            raise ValueError("no 'previous' object")
    except ValueError as exc:
        raise ConfigurationError(
            f"{path} is damaged ({exc}); restore the apps' settings with 'keygate apps "
            f"configure' and delete the file"
        ) from exc
    return content


def _write_marker(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)


def saved_secret_key_ids(settings: Settings) -> dict[str, int]:
    """How many client secrets sandbox mode keeps (to put back) under each key id."""
    content = _read_marker(marker_path(settings))
    found: dict[str, int] = {}
    for saved in (content or {}).get("previous", {}).values():
        secret = saved.get("client_secret") or ""
        if secret.count(".") >= 2:
            kid = secret.split(".")[1]
            found[kid] = found.get(kid, 0) + 1
    return found


def reencrypt_saved_secrets(runtime: Runtime) -> int:
    """Rewrite the client secrets sandbox mode keeps under the current key; how many."""
    path = marker_path(runtime.settings)
    content = _read_marker(path)
    if content is None:
        return 0
    current = f"kg1.{runtime.cipher.primary_key_id}."
    rewritten = 0
    for app, saved in content["previous"].items():
        secret = saved.get("client_secret") or ""
        if secret and not secret.startswith(current):
            plain = runtime.cipher.decrypt(secret, bound_to=_bound(app))
            saved["client_secret"] = runtime.cipher.encrypt(plain, bound_to=_bound(app))
            rewritten += 1
    if rewritten:
        _write_marker(path, content)
    return rewritten


async def enter_sandbox_mode(runtime: Runtime, host: str, first_port: int) -> dict[str, str]:
    """Store the sandboxes' client and URLs for every sandboxed app; return app → origin."""
    path = marker_path(runtime.settings)
    # A marker left by an earlier sandbox run already holds the operator's own settings.
    earlier = _read_marker(path)
    stored = await runtime.app_configs.all()
    previous: dict[str, dict[str, str]] = earlier["previous"] if earlier else {}
    # An operator catalog may drop a built-in app; only the apps it has are sandboxed.
    origins = {
        app: f"http://{host}:{port}"
        for app, port in sandbox_ports(first_port).items()
        if app in runtime.catalog
    }
    for app in origins:
        if app not in previous:
            previous[app] = _snapshot(runtime, app, stored.get(app))
    # The marker first: whatever happens next, the operator's settings can be put back.
    _write_marker(path, {"sandboxes": origins, "previous": previous})
    for app, origin in origins.items():
        urls = sandbox_urls(runtime.catalog[app], origin)
        changes = {name: urls.get(name, "") for name in _URL_FIELDS}
        changes.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        await runtime.app_configs.update(app, changes)
    await runtime.reload()
    return origins


async def leave_sandbox_mode(runtime: Runtime) -> list[str]:
    """Put back the settings sandbox mode replaced; return the apps restored (none: no-op)."""
    path = marker_path(runtime.settings)
    content = _read_marker(path)
    if content is None:
        return []
    previous: dict[str, dict[str, str]] = content["previous"]
    for app, saved in previous.items():
        changes = dict(saved)
        if changes.get("client_secret"):
            try:
                plain = runtime.cipher.decrypt(changes["client_secret"], bound_to=_bound(app))
            except DecryptionError as exc:
                raise ConfigurationError(
                    f"{path}: the saved client secret of {app} does not decrypt with this "
                    f"data dir's key"
                ) from exc
            changes["client_secret"] = plain.decode()
        await runtime.app_configs.update(app, changes)
    path.unlink()
    await runtime.reload()
    return sorted(previous)


def start_sandboxes(host: str, first_port: int, public_url: str) -> None:
    """Serve every sandbox, with its demo data, from a daemon thread; accept Keygate's callback."""

    def config(_app: str, _port: int) -> SandboxConfig:
        return SandboxConfig(redirect_uris=[f"{public_url}/oauth/callback"], seed_data=True)

    def run() -> None:
        asyncio.run(serve_sandboxes_async(host, first_port, config))

    threading.Thread(target=run, name="keygate-sandboxes", daemon=True).start()
    # granian forks its workers next: a fork while this thread is still importing (uvicorn and
    # its protocol modules load lazily) copies the held import lock, and the worker deadlocks
    # on its first import of the same module. Listening means those imports are done.
    deadline = time.monotonic() + 30
    for port in sandbox_ports(first_port).values():
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise ConfigurationError(
                        f"the sandbox on {host}:{port} did not start within 30 s"
                    ) from None
                time.sleep(0.05)


def tour(public_url: str, origins: dict[str, str], runtime: Runtime) -> str:
    """What to tell a person who started sandbox mode."""
    where = ", ".join(
        f"{runtime.catalog[app].display_name} at {url}" for app, url in origins.items()
    )
    lines = [
        f"Sandbox mode: {where} (in memory, with demo data, reset on restart).",
        f"Stored as these apps' configuration in {runtime.settings.data_dir}, so every keygate "
        f"command there uses the sandboxes; a plain 'keygate serve' restores your own.",
        f"Create a connection (POST {public_url}/connections) and open its url: the sandbox's "
        f"consent page stands in for the provider's.",
        f"Klaviyo private key accepted by the sandbox: {DEFAULT_PRIVATE_KEY}",
    ]
    # Environment overrides win over the store, so they would point an app away from its sandbox.
    shadowed = sorted(app for app in origins if app in runtime.settings.apps)
    if shadowed:
        variables = ", ".join(
            f"KEYGATE_APPS__{app.upper().replace('-', '_')}__*" for app in shadowed
        )
        lines.append(f"Warning: {variables} in the environment override the sandbox settings.")
    return "\n".join(lines)
