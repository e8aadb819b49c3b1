"""Webhook signing secrets are ciphertexts like credentials: key rotation counts them, and
re-encryption moves them, so retiring the old key leaves them readable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from keygate.crypto import Cipher, generate_key, key_id, parse_key
from keygate.store.database import Database
from keygate.store.engine import create_engine, migrate
from keygate.store.keys import KeyRepository
from keygate.store.reencrypt import reencrypt, rows_by_key
from keygate.store.webhooks import WebhookRepository
from tests.support.databases import fresh_database


def test_rotation_counts_and_reencrypts_webhook_secrets(tmp_path: Path) -> None:
    old, new = parse_key(generate_key(), "old"), parse_key(generate_key(), "new")
    url = fresh_database(tmp_path, "kg_webhook_secrets")

    async def scenario() -> tuple[dict[str, dict[str, int]], str, str]:
        engine = create_engine(url)
        await migrate(engine)
        before = Database(engine, Cipher.from_keys([old]))
        workspace = await KeyRepository(before).ensure_workspace("w")
        secret, endpoint = await WebhookRepository(before).create(
            workspace.id, "http://127.0.0.1:9/x", ["connection.created"]
        )
        rotated = Database(engine, Cipher.from_keys([new, old]))
        counted = await rows_by_key(rotated)
        await reencrypt(rotated)
        retired = Database(engine, Cipher.from_keys([new]))
        target = await WebhookRepository(retired).delivery_target(endpoint.id)
        await engine.dispose()
        assert target is not None
        return counted, secret, target[1].reveal()

    counted, secret, readable = asyncio.run(scenario())
    assert counted[key_id(old)]["webhook_endpoints"] == 1
    assert readable == secret
