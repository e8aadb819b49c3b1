"""Three replicas on one PostgreSQL database behind nginx (`deploy/nginx/keygate.conf`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.fleet import Fleet
from tests.support.sandboxes import Sandbox, start_sandbox

APP = "constant-contact"
PATH = "/constant-contact/v3/account/summary"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """The Constant Contact sandbox, counting token requests."""
    made = start_sandbox(APP, "http://127.0.0.1:1/oauth/callback")
    yield made
    made.server.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator[Fleet]:
    """Three replicas and nginx, for the whole module."""
    directory = tmp_path_factory.mktemp("fleet")
    made = Fleet(directory, fresh_database(directory, "kg_fleet"), sandbox, APP)
    made.start()
    yield made
    made.stop()


def test_every_replica_serves_through_nginx(fleet: Fleet, sandbox: Sandbox) -> None:
    tokens = sandbox.mint_tokens()
    key, conn = fleet.prepare({"access_token": tokens["access_token"]}, expires_in=3600)
    headers = {"Authorization": f"Bearer {key}", "Keygate-Connection": conn}
    with httpx.Client(timeout=30) as client:
        for replica in fleet.replicas:
            assert client.get(replica.url + PATH, headers=headers).status_code == 200
        statuses = [client.get(fleet.url + PATH, headers=headers).status_code for _ in range(9)]
    assert statuses == [200] * 9, fleet.nginx_log()
