"""A real headless Chromium (Debian's `chromium`), driven by Playwright, shared by the session.

Playwright's own browser downloads are never used: the project installs Debian's package
(`scripts/system-deps.sh test`). When it cannot be launched the tests fail, saying why, rather
than skipping: a silently skipped browser test proves nothing.

Playwright's sync API keeps an event loop marked as running in the thread that drives it, which
would break every later `asyncio.run` and async test of the session. So the browser lives in a
thread of its own and tests hand it whole scenarios to run (`Chromium.run`).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM = os.environ.get("KEYGATE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
T = TypeVar("T")
Job = tuple[Callable[[BrowserContext], Any], "Future[Any]"]


class Chromium:
    """One headless Chromium with a fresh user-data dir, driven from its own thread."""

    def __init__(self, executable: str, profile: Path) -> None:
        self._executable, self._profile = executable, profile
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, name="chromium", daemon=True)

    def start(self) -> Chromium:
        """Launch the browser; raise whatever stopped it from starting."""
        self._thread.start()
        self._ready.result(timeout=120)
        return self

    def _serve(self) -> None:
        try:
            with sync_playwright() as driver:
                context = driver.chromium.launch_persistent_context(
                    str(self._profile),
                    executable_path=self._executable,
                    headless=True,
                    args=CHROMIUM_ARGS,
                    timeout=60_000,
                )
                context.set_default_timeout(20_000)
                self._ready.set_result(None)
                while (job := self._jobs.get()) is not None:
                    action, done = job
                    try:
                        done.set_result(action(context))
                    except BaseException as exc:  # handed back to the test, assertions included
                        done.set_exception(exc)
                context.close()
        except Exception as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)

    def run(self, scenario: Callable[[Page], T]) -> T:
        """Run a scenario in a new tab (closed afterwards); its result or its exception."""

        def in_tab(context: BrowserContext) -> T:
            tab = context.new_page()
            try:
                return scenario(tab)
            finally:
                tab.close()

        done: Future[T] = Future()
        self._jobs.put((in_tab, done))
        return done.result(timeout=120)

    def stop(self) -> None:
        """Close the browser and its thread."""
        self._jobs.put(None)
        self._thread.join(30)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """The session's Chromium; the tests FAIL (not skip) when it cannot be launched."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run scripts/system-deps.sh test "
            "(apt-get install chromium) or set KEYGATE_TEST_CHROMIUM",
            pytrace=False,
        )
    browser = Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        browser.start()
    except Exception as exc:
        pytest.fail(f"Chromium at {CHROMIUM} could not be launched: {exc}", pytrace=False)
    yield browser
    browser.stop()
