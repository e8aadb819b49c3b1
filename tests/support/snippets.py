"""Running the code blocks of a document (the seeds, the generated skills) as a reader would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Collection

import httpx

from keygate.sandbox import DEFAULT_PRIVATE_KEY
from tests.support.harness import Tenant

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
KEY_VARIABLES = ("KEYGATE_API_KEY", "MATON_API_KEY")


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """Every fenced code block of a markdown text: (info string's language, code)."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(markdown)]


def run_code(language: str, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a python or bash block in its own process, with only `env`'s API-key variables set."""
    command = {
        "python": [sys.executable, "-c", code],
        "bash": ["bash", "-euo", "pipefail", "-c", code],
    }[language]
    base = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return subprocess.run(
        command,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Person:
    """The person a document's reader hands a connect link to: approves every PENDING
    connection of a workspace whose method is in `methods` (API key: pastes the Klaviyo
    sandbox's private key on the connect page; OAuth: approves on the sandbox's consent page)."""

    def __init__(self, tenant: Tenant, methods: Collection[str] = ("API_KEY",)) -> None:
        self._tenant = tenant
        self._methods = set(methods)
        self._stop = threading.Event()
        self._seen: set[str] = set()
        self.approved = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=str(self._tenant.http.base_url), timeout=30) as http:
            http.headers["Authorization"] = f"Bearer {self._tenant.key}"
            while not self._stop.wait(0.2):
                listed = http.get("/connections", params={"status": "PENDING"}).json()
                for connection in listed["connections"]:
                    method = connection["method"]
                    if method not in self._methods or connection["connection_id"] in self._seen:
                        continue
                    if method == "API_KEY":
                        self._paste_key(http, connection["url"])
                    else:
                        self._consent(connection["connection_id"], connection["url"])

    def _paste_key(self, http: httpx.Client, url: str) -> None:
        page = http.get(url)
        token = re.search(r'name="session_token" value="([^"]+)"', page.text)
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        if token and action:
            http.post(
                str(page.url.join(action.group(1))),
                data={"session_token": token.group(1), "api_key": DEFAULT_PRIVATE_KEY},
            )
            self.approved += 1

    def _consent(self, connection_id: str, url: str) -> None:
        from tests.connect.oauth_dance import Browser

        self._seen.add(connection_id)  # a consent is given once; its link is then spent
        browser = Browser()
        try:
            browser.authorize(url)
            self.approved += 1
        finally:
            browser.close()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        self._thread.join(30)
