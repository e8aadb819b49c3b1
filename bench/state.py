"""A store at scale: 100,000 connections and 1,000 API keys, inserted in bulk.

Rows go through Keygate's own schema models and its `Cipher` (credentials encrypted and bound
to their connection id, exactly as the repositories write them), in batched multi-row inserts,
so a run spends seconds, not minutes, building the state.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import orjson
from pydantic import SecretStr
from sqlalchemy import insert, select

from keygate.crypto import Cipher, hash_api_key, load_master_key
from keygate.settings import Settings
from keygate.store.engine import create_engine
from keygate.store.keys import display_prefix, generate_api_key
from keygate.store.records import Status
from keygate.store.schema import ApiKey, Connection, Credential, Workspace, utcnow

_BATCH = 2_000


@dataclass
class Populated:
    """What the bulk insert made that the benchmark uses."""

    connection_id: str
    connections: int
    keys: int


def _settings(data_dir: str, database_url: str, encryption_key: str | None) -> Settings:
    values: dict[str, object] = {"data_dir": data_dir, "database_url": database_url}
    if encryption_key:
        values["encryption_key"] = SecretStr(encryption_key)
    return Settings(**values)  # type: ignore[arg-type]


async def _populate(
    settings: Settings, workspace_name: str, connections: int, keys: int, token: str
) -> Populated:
    cipher = Cipher(load_master_key(settings))
    engine = create_engine(settings.resolved_database_url)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            home = await conn.scalar(select(Workspace.id).where(Workspace.name == workspace_name))
            assert home is not None, "run `keygate init` first"
            workspaces = [str(home)]
            extra = [
                {"id": str(uuid.uuid4()), "name": f"bench-{index:04d}", "created_at": now}
                for index in range(keys - 1)
            ]
            if extra:
                await conn.execute(insert(Workspace), extra)
            workspaces += [str(row["id"]) for row in extra]
            key_rows = []
            for workspace_id in workspaces[1:]:
                key = generate_api_key()
                key_rows.append(
                    {
                        "id": str(uuid.uuid4()),
                        "workspace_id": workspace_id,
                        "prefix": display_prefix(key),
                        "key_hash": hash_api_key(key),
                        "name": "bench",
                        "created_at": now,
                        "last_used_at": None,
                        "revoked_at": None,
                    }
                )
            if key_rows:
                await conn.execute(insert(ApiKey), key_rows)
        chosen = ""
        middle = connections // 2
        payload = orjson.dumps({"access_token": token, "token_type": "Bearer"})
        for start in range(0, connections, _BATCH):
            conn_rows: list[dict[str, object]] = []
            cred_rows: list[dict[str, object]] = []
            for index in range(start, min(start + _BATCH, connections)):
                connection_id = str(uuid.uuid4())
                # The benchmark's connection sits in the middle of its workspace's many.
                workspace_id = workspaces[0] if index == middle else workspaces[index % keys]
                if index == middle:
                    chosen = connection_id
                conn_rows.append(
                    {
                        "id": connection_id,
                        "workspace_id": workspace_id,
                        "app": "klaviyo" if index % 2 or index == middle else "constant-contact",
                        "method": "OAUTH2",
                        "status": Status.ACTIVE.value,
                        "metadata_": {},
                        "scopes": None,
                        "error_code": None,
                        "error_message": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                cred_rows.append(
                    {
                        "connection_id": connection_id,
                        "ciphertext": cipher.encrypt(payload, bound_to=connection_id),
                        "key_id": cipher.primary_key_id,
                        "expires_at": None,
                        "version": 1,
                        "refresh_failures": 0,
                        "retry_after": None,
                        "updated_at": now,
                    }
                )
            async with engine.begin() as conn:
                await conn.execute(insert(Connection), conn_rows)
                await conn.execute(insert(Credential), cred_rows)
        return Populated(chosen, connections, keys)
    finally:
        await engine.dispose()


def populate(
    data_dir: str,
    database_url: str,
    *,
    connections: int,
    keys: int,
    token: str,
    workspace: str = "default",
    encryption_key: str | None = None,
) -> Populated:
    """Add `connections` ACTIVE connections and `keys` workspaces with one key each."""
    settings = _settings(data_dir, database_url, encryption_key)
    return asyncio.run(_populate(settings, workspace, connections, keys, token))
