"""The request log's way into the store: bounded, and when the store is down it drops and
counts rather than block a request or grow without bound."""

from __future__ import annotations

import asyncio
import time

from keygate import metrics
from keygate.crypto import Cipher, generate_key, parse_key
from keygate.gateway.log_sink import StoredRequestLog, query_names
from keygate.gateway.request_log import Entry
from keygate.store.database import Database
from keygate.store.engine import create_engine
from keygate.store.request_logs import RequestLogRepository
from tests.support.servers import free_port


def _dropped(reason: str) -> float:
    for line in metrics.render().decode().splitlines():
        if line.startswith(f'keygate_request_log_dropped_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _entry(index: int) -> Entry:
    return (
        time.perf_counter(),
        0.001,
        "GET",
        "klaviyo",
        b"/klaviyo/api/x",
        200,
        "c",
        f"r-{index}".encode(),
        b"a=1",
        ("ws", "kg_prefix"),
        False,
    )


def test_an_unreachable_store_drops_and_counts_without_blocking() -> None:
    # Nothing listens on the port: every write fails as an unreachable database.
    url = f"postgresql+asyncpg://kg:kg@127.0.0.1:{free_port()}/kg"
    db = Database(create_engine(url), Cipher(parse_key(generate_key(), "test")))
    full_before, error_before = _dropped("queue_full"), _dropped("store_error")

    async def scenario() -> float:
        sink = StoredRequestLog(RequestLogRepository(db), max_rows=3)
        started = time.perf_counter()
        sink.put([_entry(0), _entry(1)])
        sink.put([_entry(2), _entry(3)])  # 4 rows > 3: dropped at once
        spent = time.perf_counter() - started
        sink.start()
        await sink.close()  # the first batch's write fails: dropped too
        await db.close()
        return spent

    spent = asyncio.run(scenario())
    assert spent < 0.05, "put never waits for the store"
    assert _dropped("queue_full") - full_before == 2
    assert _dropped("store_error") - error_before == 2


def test_only_query_parameter_names_are_kept() -> None:
    assert query_names(b"page%5Bsize%5D=5&email=a%40b.c&email=d&flag&=x") == [
        "page[size]",
        "email",
        "flag",
    ]
