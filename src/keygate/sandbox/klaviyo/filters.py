"""Klaviyo's `filter` query language: `equals(email,"a@b.c")`, `any(id,[…])`, `and(…)`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from keygate.sandbox.klaviyo.jsonapi import KlaviyoError, invalid

Value = str | float | bool | None | list["Value"]
Predicate = Callable[[Mapping[str, object]], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<punct>[(),\[\]])'
    r"|(?P<word>[^\s(),\[\]\"']+))"
)

_UNESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class FilterField:
    """Which operators a field accepts in an endpoint's filter."""

    operators: frozenset[str]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise _error(f"Unexpected character at position {position}.")
            break
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _error(detail: str) -> KlaviyoError:
    return invalid(f"Invalid filter provided. {detail}", parameter="filter")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            raise _error(f"Expected {expected or 'more input'}.")
        self.index += 1
        return token

    def call(self) -> tuple[str, list[object]]:
        kind, name = self.take()
        if kind != "word":
            raise _error(f"Expected an operator, got {name}.")
        self.take("(")
        args = [self.argument()]
        while self.peek() == ("punct", ","):
            self.take(",")
            args.append(self.argument())
        self.take(")")
        return name, args

    def argument(self) -> object:
        token = self.peek()
        if token is None:
            raise _error("Unexpected end of filter.")
        kind, text = token
        following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
        if kind == "word" and following == ("punct", "("):
            return self.call()
        self.index += 1
        if kind == "str":
            return _UNESCAPE.sub(r"\1", text[1:-1])
        if text == "[":
            items: list[object] = []
            while self.peek() != ("punct", "]"):
                items.append(self.argument())
                if self.peek() == ("punct", ","):
                    self.take(",")
            self.take("]")
            return items
        if kind == "word":
            return {"true": True, "false": False, "null": None}.get(text, text)
        raise _error(f"Unexpected {text}.")


def _compare(op: str, actual: object, expected: object) -> bool:
    if op == "equals":
        return actual == expected
    if op == "any":
        return isinstance(expected, list) and actual in expected
    if actual is None or not isinstance(expected, str):
        return False
    left = datetime.fromisoformat(str(actual))
    right = datetime.fromisoformat(expected)
    if left.tzinfo is None or right.tzinfo is None:
        left, right = left.replace(tzinfo=None), right.replace(tzinfo=None)
    return left > right if op == "greater-than" else left < right


def _build(node: object, fields: Mapping[str, FilterField]) -> Predicate:
    if not (isinstance(node, tuple) and len(node) == 2):
        raise _error("Expected an operator call.")
    op, args = node
    if op == "and":
        parts = [_build(arg, fields) for arg in args]
        return lambda row: all(part(row) for part in parts)
    if len(args) != 2 or not isinstance(args[0], str):
        raise _error(f"{op} takes a field and a value.")
    field, expected = args
    allowed = fields.get(field)
    if allowed is None or op not in allowed.operators:
        raise _error(f"'{op}' is not a valid operator for field '{field}'.")
    if op == "any" and not isinstance(expected, list):
        raise _error("'any' needs a list value.")
    if op in ("greater-than", "less-than"):
        try:
            datetime.fromisoformat(str(expected))
        except ValueError as exc:
            raise _error(f"'{expected}' is not a valid datetime.") from exc
    return lambda row: _compare(op, row.get(field), expected)


def parse_filter(text: str | None, fields: Mapping[str, FilterField]) -> Predicate:
    """Compile a filter string into a row predicate, or raise 400 `invalid`."""
    if text is None or not text.strip():
        return lambda row: True
    parser = _Parser(text)
    calls = [parser.call()]
    while parser.peek() == ("punct", ","):
        parser.take(",")
        calls.append(parser.call())
    if parser.peek() is not None:
        raise _error("Unexpected trailing input.")
    parts = [_build(call, fields) for call in calls]
    return lambda row: all(part(row) for part in parts)
