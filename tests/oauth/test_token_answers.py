"""How token answers are read as the catalog says: lifetime units and defaults, rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keygate.oauth.protocol import Lifetime, lifetime_of, parse_token_response

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("answer", "lifetime", "expected"),
    [
        ({"expires_in": 60}, lifetime_of(True, "minutes", None), timedelta(hours=1)),
        ({"expires_in": 5000}, lifetime_of(True, "milliseconds", None), timedelta(seconds=5)),
        ({}, lifetime_of(True, "seconds", 900), timedelta(seconds=900)),
        ({"expires_in": 0}, lifetime_of(True, "seconds", 900), timedelta(seconds=900)),
        ({"expires_in": "0"}, lifetime_of(True, "seconds", None), None),
        ({}, lifetime_of(True, "seconds", None), None),
        ({"expires_in": 3600}, lifetime_of(False, "seconds", None), None),
    ],
)
def test_lifetimes(
    answer: dict[str, object], lifetime: Lifetime, expected: timedelta | None
) -> None:
    tokens = parse_token_response(200, {"access_token": "a", **answer}, NOW, lifetime)
    assert tokens.expires_at == (None if expected is None else NOW + expected)


def test_a_rotating_refresh_answer_without_a_new_refresh_token_leaves_none() -> None:
    tokens = parse_token_response(200, {"access_token": "a"}, NOW)
    assert tokens.stored_values(previous_refresh="old")["refresh_token"] == "old"
    assert "refresh_token" not in tokens.stored_values(previous_refresh="old", rotates=True)


def test_captured_values_are_carried_over_unless_answered_again() -> None:
    tokens = parse_token_response(200, {"access_token": "a"}, NOW)
    previous = {"realm": "r1", "team": "t1", "other": "x"}
    kept = tokens.stored_values(previous=previous, kept=["realm", "team"])
    assert (kept["realm"], kept["team"], "other" in kept) == ("r1", "t1", False)
