"""An id that cannot name a connection is a 404 on every store, never a database error."""

from __future__ import annotations

import pytest

from tests.gateway.test_errors import assert_error
from tests.support.harness import Tenant


@pytest.mark.parametrize(
    "raw", ["%00", "a%00b", "%C3%A9", "not-a-uuid", "4314BD0F-FD56-40AB-8C65-2676DD2C23C4"]
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_ids_that_name_no_connection(tenant: Tenant, raw: str, method: str) -> None:
    # PostgreSQL refuses a NUL byte in text: the id must not reach it.
    assert_error(tenant.http.request(method, f"/connections/{raw}"), 404, "connection_not_found")
