"""How every log line is written: Keygate's loggers, granian's and the access log share one
format, text or JSON (`KEYGATE_LOG_FORMAT`), and no value a caller sent can forge a line or put
a raw control byte into one.

- **text**: `2026-12-01 21:10:00,123 INFO pid=4700 keygate.gateway message`. Every character
  of the message that is not printable (C0 and C1 controls, DEL, line and paragraph
  separators) is written as its Python escape: `\\n`, `\\r`, `\\x1b`, `\\x85`, `\\u2028`. A
  traceback follows on lines of its own, each indented by four spaces and escaped the same way,
  so a line that starts in column 0 is always the start of a record.
- **json**: one object per line, `{"time": "2026-12-01T21:10:00.123Z", "level", "pid",
  "logger", "message"}` plus `"exception"` (the traceback) when there is one. JSON escapes the
  C0 controls; DEL, the C1 controls and U+2028/U+2029 are escaped too (`\\u007f`), which JSON
  allows but does not require.

Access-log fields a caller controls (method, path) are escaped harder, in both formats: any
byte outside printable ASCII, a space and a backslash become `\\xNN` (`\\\\` for a backslash),
so a field never contains a separator and the escape is unambiguous.
"""

from __future__ import annotations

import logging
import logging.config
import re
import time
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s pid=%(process)d %(name)s %(message)s"
_CONTINUATION = "\n    "
# What JSON leaves raw that a terminal or a line-splitting reader may still act on.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029]")


def escape_text(value: str) -> str:
    """`value` with each non-printable character written as its Python escape."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in value)


def escape_field(value: str) -> str:
    """A caller's value as one access-log field: printable ASCII without spaces, escaped."""
    if value.isascii() and value.isprintable() and " " not in value and "\\" not in value:
        return value
    # unicode_escape writes `\\` for a backslash, `\xNN` for other bytes outside printable ASCII
    # (a path decoded as latin-1 gets its raw bytes back this way), `\uNNNN` above U+00FF.
    return value.encode("unicode_escape").decode("ascii").replace(" ", "\\x20")


def json_line(entry: dict[str, Any]) -> str:
    """One JSON object on one line, with no raw control character in it."""
    line = orjson.dumps(entry).decode()
    if _JSON_RAW.search(line) is not None:
        line = _JSON_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", line)
    return line


def utc_timestamp(seconds: float) -> str:
    """RFC 3339 UTC time with milliseconds, as the JSON lines carry it."""
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


class TextFormatter(logging.Formatter):
    """Keygate's text line, with the message and any traceback escaped."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line (plus indented traceback lines)."""
        record.message = escape_text(record.getMessage())
        record.asctime = self.formatTime(record)
        line = self.formatMessage(record)
        for extra in _extras(self, record):
            line += _CONTINUATION + _CONTINUATION.join(map(escape_text, extra.split("\n")))
        return line


class JsonFormatter(logging.Formatter):
    """Keygate's JSON line: one object per record."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object."""
        entry: dict[str, Any] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extras = _extras(self, record)
        if extras:
            entry["exception"] = "\n".join(extras)
        return json_line(entry)


def _extras(formatter: logging.Formatter, record: logging.LogRecord) -> list[str]:
    """The record's traceback and stack, formatted (and cached, as `logging.Formatter` does)."""
    extras = []
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        extras.append(record.exc_text)
    if record.stack_info:
        extras.append(formatter.formatStack(record.stack_info))
    return extras


def logging_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` for a serving process: every record — Keygate's,
    granian's (`_granian`, `granian.access`) and any library's — to stderr through one
    formatter. `keygate serve` hands it to granian (`log_dictconfig`), which applies it in the
    main process and in each worker."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"keygate": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "keygate",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        # granian's own loggers propagate to the root's handler; granian sets `_granian`'s level.
        # Alembic's INFO records are its plugin set-up chatter on every start.
        "loggers": {
            "_granian": {"level": level.upper()},
            "granian.access": {"level": "INFO"},
            "alembic": {"level": "WARNING"},
        },
    }


def configure_logging(log_format: LogFormat, level: str) -> None:
    """Send every record to stderr in the configured format."""
    logging.config.dictConfig(logging_config(log_format, level))
