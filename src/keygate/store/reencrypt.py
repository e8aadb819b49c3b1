"""Which key each stored ciphertext needs, and re-encrypting them under the current key while
Keygate serves.

Rows are rewritten a batch at a time: the batch is read, re-encrypted in this process, then
written in one short transaction of UPDATEs, each conditional on the row still holding the very
ciphertext read. A refresh or re-authorization that wrote the row meanwhile (under its own
current key) wins, and no row is held for longer than its batch's writes. The plaintext does not
change, so no cache is cleared (the cache epoch is not bumped) and no request notices.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from keygate.crypto import DecryptionError
from keygate.store.database import Database
from keygate.store.schema import AppConfig, Base, ConnectSession, Credential, WebhookEndpointRow

_PREFIX_LENGTH = len("kg1.")
_KEY_ID_LENGTH = 12


@dataclass(frozen=True)
class _Column:
    """A column of ciphertexts: its table, what names a row, and what its ciphertexts are
    bound to (the associated data the writer used)."""

    name: str
    table: type[Base]
    key: Any
    ciphertext: Any
    bound_to: Callable[[Any], str]
    """The row's `bound_to`, from the selected (key, bound) values."""
    bound: Any
    key_id: Any = None
    """A column that repeats the ciphertext's key id, kept in step."""


COLUMNS = (
    _Column(
        "credentials",
        Credential,
        Credential.connection_id,
        Credential.ciphertext,
        lambda connection_id: str(connection_id),  # ConnectionRepository.store_credential
        Credential.connection_id,
        Credential.key_id,
    ),
    _Column(
        "connect_sessions",
        ConnectSession,
        ConnectSession.nonce,
        ConnectSession.verifier_ciphertext,
        lambda connection_id: f"pkce:{connection_id}",  # connect.oauth_flow: the PKCE verifier
        ConnectSession.connection_id,
    ),
    _Column(
        "app_configs",
        AppConfig,
        AppConfig.app,
        AppConfig.client_secret_ciphertext,
        lambda app: f"app:{app}",  # AppConfigRepository: the OAuth client secret
        AppConfig.app,
    ),
    _Column(
        "webhook_endpoints",
        WebhookEndpointRow,
        WebhookEndpointRow.id,
        WebhookEndpointRow.secret_ciphertext,
        lambda endpoint_id: str(endpoint_id),  # WebhookRepository.create: the signing secret
        WebhookEndpointRow.id,
    ),
)


def _key_id_of(column: Any) -> Any:
    """The key id inside a `kg1.<key id>.<blob>` ciphertext, in SQL."""
    return func.substr(column, _PREFIX_LENGTH + 1, _KEY_ID_LENGTH)


async def rows_by_key(db: Database) -> dict[str, dict[str, int]]:
    """For each key id some row needs: how many rows of each table hold one of its
    ciphertexts."""
    found: dict[str, dict[str, int]] = {}
    async with db.read() as session:
        for column in COLUMNS:
            kid = _key_id_of(column.ciphertext)
            statement = (
                select(kid, func.count()).where(column.ciphertext.is_not(None)).group_by(kid)
            )
            for key, count in (await session.execute(statement)).all():
                found.setdefault(str(key), {})[column.name] = int(count)
    return found


@dataclass
class Reencrypted:
    """What a re-encryption did: rows rewritten per table, and rows it could not decrypt."""

    rewritten: Counter[str] = field(default_factory=Counter)
    undecryptable: list[str] = field(default_factory=list)
    """`table:row` of each ciphertext no key known decrypts (never a value)."""


async def reencrypt(db: Database, *, batch_size: int = 100) -> Reencrypted:
    """Rewrite every ciphertext not under the current key with the current key."""
    done = Reencrypted()
    for column in COLUMNS:
        await _reencrypt_column(db, column, batch_size, done)
    return done


async def _reencrypt_column(
    db: Database, column: _Column, batch_size: int, done: Reencrypted
) -> None:
    cipher = db.cipher
    after: Any = None
    while True:
        current = f"kg1.{cipher.primary_key_id}."
        statement = (
            select(column.key, column.bound, column.ciphertext)
            .where(column.ciphertext.is_not(None))
            .where(func.substr(column.ciphertext, 1, len(current)) != current)
            .order_by(column.key)
            .limit(batch_size)
        )
        if after is not None:
            statement = statement.where(column.key > after)
        async with db.read() as session:
            rows = (await session.execute(statement)).all()
        if not rows:
            return
        after = rows[-1][0]
        changes: list[tuple[Any, str, str]] = []
        for key, bound, old in rows:
            bound_to = column.bound_to(bound)
            try:
                plain = cipher.decrypt(old, bound_to=bound_to)
            except DecryptionError:
                done.undecryptable.append(f"{column.name}:{key}")
                continue
            changes.append((key, old, cipher.encrypt(plain, bound_to=bound_to)))
        async with db.sessions() as session, session.begin():
            for key, old, new in changes:
                values: dict[Any, Any] = {column.ciphertext: new}
                if column.key_id is not None:
                    values[column.key_id] = cipher.primary_key_id
                result = await session.execute(
                    update(column.table)
                    .where(column.key == key, column.ciphertext == old)
                    .values(values),
                    execution_options={"synchronize_session": False},
                )
                done.rewritten[column.name] += int(getattr(result, "rowcount", 0))
        if len(rows) < batch_size:
            return
