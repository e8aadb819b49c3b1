"""The tools' view of Keygate when it cannot be reached (`keygate mcp --url` pointing nowhere)."""

from __future__ import annotations

import httpx
import pytest

from keygate.mcp_server.keygate_api import KeygateAnswerError, KeygateAPI
from tests.support.servers import free_port

KEY = "kg_unreachable_test_key_0123456789abcdef"


async def test_an_unreachable_keygate_is_one_clear_error_without_the_key() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        api = KeygateAPI(client, f"Bearer {KEY}", url)
        with pytest.raises(KeygateAnswerError) as control:
            await api.control("GET", "/apps")
        with pytest.raises(KeygateAnswerError) as gateway:
            await api.gateway("GET", "/klaviyo/api/profiles", headers={}, content=None, limit=10)
        with pytest.raises(KeygateAnswerError) as text:
            await api.text("/apps/klaviyo/skill")
    for failure in (control.value, gateway.value, text.value):
        assert failure.code == "keygate_unreachable"
        assert "could not be reached (ConnectError)" in str(failure)
        assert KEY not in str(failure)
