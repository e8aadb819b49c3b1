"""Signing in to the dashboard over plain HTTP (httpx), as a browser's form posts would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a dashboard page's forms carry."""
    found = _TOKEN.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


@contextmanager
def signed_in(base_url: str, api_key: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client holding a dashboard session for the key, and the session's CSRF token."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield _sign_in(client, api_key)


def _sign_in(client: httpx.Client, api_key: str) -> tuple[httpx.Client, str]:
    form = client.get("/ui/sign-in")
    assert form.status_code == 200
    answer = client.post("/ui/sign-in", data={"api_key": api_key, "csrf_token": csrf_of(form.text)})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/connections"
    page = client.get("/ui/connections")
    assert page.status_code == 200
    return client, csrf_of(page.text)
