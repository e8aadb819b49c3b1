"""Log lines a caller cannot forge: the access log of `keygate serve` (text and JSON) and the
formatter every logger writes through."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from keygate.log_format import JsonFormatter, TextFormatter, escape_field
from tests.support.databases import fresh_database
from tests.support.processes import Deployment, Process
from tests.support.raw_http import read_until_closed, send_raw
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

FORGED = "2026-01-01 00:00:00,000 INFO pid=1 keygate.access GET constant-contact /x 200 1.0ms"
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ pid=\d+ \S+ ")
# A raw control character: C0 (but the line feed ending each line), DEL, C1, U+2028/U+2029.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _encoded(text: str) -> str:
    return "".join(c if c.isalnum() or c in "/.-" else f"%{ord(c):02x}" for c in text)


# Paths an unauthenticated caller sends: a percent-encoded line feed followed by a forged
# access line, CR, ESC and NUL; the same on an unknown app; raw UTF-8 bytes (hyper lets them
# through in the request target; it refuses raw control bytes there).
TARGETS = [
    b"/constant-contact/v3/x" + _encoded("\n" + FORGED + "\r\x1b[31m\x00").encode(),
    b"/no-such-app/x" + _encoded("\n" + FORGED).encode(),
    b"/constant-contact/v3/caf\xc3\xa9",
]


@dataclass
class Served:
    """`keygate serve` in one log format."""

    log_format: str
    process: Process
    port: int

    def send_forgeries(self) -> list[str]:
        """Send each target without a key; the request ids they were sent with."""
        ids = []
        for target in TARGETS:
            request_id = uuid.uuid4().hex
            ids.append(request_id)
            head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            with send_raw(self.port, head + f"X-Request-Id: {request_id}\r\n\r\n".encode()) as sock:
                read_until_closed(sock, 10)
        deadline = time.monotonic() + 10
        while not all(i in self.process.output() for i in ids) and time.monotonic() < deadline:
            time.sleep(0.05)  # the access log is written in batches
        return ids


@pytest.fixture(scope="module", params=["text", "json"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: tuple[RecordingUpstream, ServerThread],
) -> Iterator[Served]:
    """`keygate serve` in each log format."""
    directory = tmp_path_factory.mktemp("logs")
    database = fresh_database(directory, f"kg_log_{request.param}")
    deployment = Deployment(directory, database, upstream[1], "constant-contact")
    deployment.prepare({"access_token": "cc-log-a", "refresh_token": "cc-log-r"}, 3600)
    process = deployment.serve(extra_env={"KEYGATE_LOG_FORMAT": request.param})
    try:
        yield Served(request.param, process, deployment.port)
    finally:
        process.stop()


def test_a_caller_cannot_forge_or_corrupt_a_log_line(served: Served) -> None:
    log_format = served.log_format
    ids = served.send_forgeries()
    lines = served.process.output().splitlines()
    assert not [line for line in lines if RAW_CONTROL.search(line)]
    assert not [line for line in lines if line.startswith(FORGED)]
    access = {}
    for line in lines:
        if log_format == "text":
            # Every line is one record of Keygate's format (granian's included).
            assert RECORD.match(line), line
            if " keygate.access " in line:
                access[line.rsplit("id=", 1)[1]] = line.split(" ")[7]
        else:
            entry = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "pid", "logger"} <= entry.keys(), line
            if entry["logger"] == "keygate.access":
                access[entry["request_id"]] = entry["path"]
    # The path is logged as sent, still percent-encoded; bytes outside printable ASCII escaped.
    assert access[ids[0]].startswith("/constant-contact/v3/x%0a2026-01-01%2000")
    assert access[ids[1]].startswith("/no-such-app/x%0a")
    assert access[ids[2]] == "/constant-contact/v3/caf\\xc3\\xa9"
    assert any("_granian" in line for line in lines)  # granian's records, same format


def _format(formatter: logging.Formatter, emit: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"keygate.test.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if emit == "exception":
            try:
                raise ValueError(*args)
            except ValueError:
                logger.exception("request failed")
        else:
            logger.warning("caller sent %s", *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


HOSTILE = "a\nb\r" + FORGED + "\x1b[2J\x00\x7f\x85\u2028é"


def test_text_records_escape_what_is_not_printable() -> None:
    written = _format(TextFormatter(), "warning", HOSTILE)
    [line] = written.splitlines()
    assert line.endswith("caller sent a\\nb\\r" + FORGED + "\\x1b[2J\\x00\\x7f\\x85\\u2028é")
    assert RECORD.match(line)


def test_a_traceback_stays_indented_under_its_record() -> None:
    written = _format(TextFormatter(), "exception", "bad value\n" + FORGED + "\x1b")
    first, *rest = written.splitlines()
    assert RECORD.match(first)
    assert first.endswith(" request failed")
    assert len(rest) > 2
    assert all(line.startswith("    ") for line in rest)  # no line can pass as a record
    assert "    ValueError: bad value" in rest
    assert "    " + FORGED + "\\x1b" in rest
    assert not RAW_CONTROL.search(written)


def test_json_records_are_one_object_a_line_with_no_raw_control_character() -> None:
    written = _format(JsonFormatter(), "warning", HOSTILE)
    [line] = written.splitlines()
    assert not RAW_CONTROL.search(line)
    entry = json.loads(line)
    assert entry["message"] == "caller sent " + HOSTILE
    assert entry["level"] == "WARNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    failed = json.loads(_format(JsonFormatter(), "exception", "bad\nvalue"))
    assert failed["message"] == "request failed"
    assert failed["exception"].endswith("ValueError: bad\nvalue")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("/klaviyo/api/profiles", "/klaviyo/api/profiles"),
        ("/a%0ab", "/a%0ab"),
        ("/a\nb c", "/a\\nb\\x20c"),
        ("/a\\x0a", "/a\\\\x0a"),  # a literal backslash cannot pass for an escape
        ("/caf\xc3\xa9", "/caf\\xc3\\xa9"),  # raw bytes, read as latin-1
        ("/\u2028", "/\\u2028"),
    ],
)
def test_access_fields_are_printable_ascii_without_separators(value: str, field: str) -> None:
    assert escape_field(value) == field
