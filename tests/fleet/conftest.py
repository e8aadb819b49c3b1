"""The fleet tests: 3 replicas on one PostgreSQL database behind nginx (PostgreSQL pass only)."""

from __future__ import annotations

import pytest

from tests.support.databases import PG_URL
from tests.support.fleet import nginx_available


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every fleet test, saying why, unless PostgreSQL and nginx are there."""
    reason = None
    if not PG_URL:
        reason = "fleet tests need PostgreSQL: set KEYGATE_TEST_DATABASE_URL (scripts/test.sh)"
    elif not nginx_available():
        reason = "fleet tests need nginx: run scripts/system-deps.sh test"
    if reason is None:
        return
    for item in items:
        if "tests/fleet/" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=reason))
