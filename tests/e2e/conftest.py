"""Keygate with a generic provider sandbox for every catalog app (see tests/support/generic.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.generic import GenericKeygate
from tests.support.harness import Tenant


@pytest.fixture(scope="module")
def generic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenericKeygate]:
    """Keygate and the generic sandboxes, for one test module."""
    directory = tmp_path_factory.mktemp("keygate-generic")
    made = GenericKeygate(directory, fresh_database(directory, "keygate_generic"))
    yield made
    made.stop()


@pytest.fixture
def tenant(generic: GenericKeygate) -> Iterator[Tenant]:
    """A fresh workspace and key."""
    made = generic.keygate.tenant()
    yield made
    made.close()


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """A person's browser: a cookie jar, no automatic redirects."""
    with httpx.Client(timeout=30) as client:
        yield client
