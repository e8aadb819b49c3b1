"""The SDK tests get a Keygate and sandboxes of their own: they create provider data (profiles,
contacts) that would show in other tests' listings on the session's shared sandboxes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import fresh_database
from tests.support.sandboxes import SandboxedKeygate


@pytest.fixture(scope="package")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxedKeygate]:
    """Keygate wired to sandboxes of this package's own."""
    directory = tmp_path_factory.mktemp("keygate-sdk-tests")
    made = SandboxedKeygate(directory, fresh_database(directory, "keygate_sdk_tests"))
    yield made
    made.stop()
