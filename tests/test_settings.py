"""Settings: the public URL rule, the one per-app overrides type, `create_app` taking them."""

from __future__ import annotations

import inspect
import os

import pytest

from keygate.app import create_app
from keygate.catalog.loader import AppOverrides
from keygate.secret import Secret
from keygate.settings import Settings


@pytest.fixture(autouse=True)
def _no_keygate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes counts: the runner's own KEYGATE_* variables are hidden."""
    for name in list(os.environ):
        if name.startswith("KEYGATE_"):
            monkeypatch.delenv(name)


def test_the_public_url_follows_the_host_and_port_served(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().public_url == "http://127.0.0.1:8080"
    assert Settings(port=18020).public_url == "http://127.0.0.1:18020"
    # A wildcard bind is reached on loopback; an IPv6 host is bracketed.
    assert Settings(host="0.0.0.0", port=1).public_url == "http://127.0.0.1:1"
    assert Settings(host="::1", port=2).public_url == "http://[::1]:2"
    monkeypatch.setenv("KEYGATE_PORT", "18021")
    assert Settings().public_url == "http://127.0.0.1:18021"
    assert Settings().public_url_given is False


def test_keygate_public_url_wins_and_is_known_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYGATE_PUBLIC_URL", "https://keygate.example.com/")
    settings = Settings(port=18022)
    assert settings.public_url == "https://keygate.example.com"
    assert settings.served_url == "http://127.0.0.1:18022"
    assert settings.public_url_given is True
    monkeypatch.setenv("KEYGATE_PUBLIC_URL", "")  # set but empty: as if unset
    assert Settings(port=18023).public_url == "http://127.0.0.1:18023"


def test_environment_overrides_are_the_catalog_overrides_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYGATE_APPS__CONSTANT_CONTACT__CLIENT_SECRET", "cs-env-7c1d")
    monkeypatch.setenv("KEYGATE_APPS__CONSTANT_CONTACT__SCOPES", '["a", "b"]')
    given = Settings().apps["constant-contact"]
    assert type(given) is AppOverrides
    assert given.client_secret == Secret("cs-env-7c1d")
    assert "cs-env-7c1d" not in repr(given)
    assert given.scopes == ("a", "b")
    stored = AppOverrides(client_id="cid", scopes=("c",))
    merged = given.merged_over(stored)
    assert (merged.client_id, merged.client_secret, merged.scopes) == (
        "cid",
        Secret("cs-env-7c1d"),
        ("a", "b"),
    )


def test_create_app_requires_its_settings() -> None:
    parameter = inspect.signature(create_app).parameters["settings"]
    assert parameter.default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        create_app()  # type: ignore[call-arg]


def test_the_metrics_directory_is_a_keygate_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert Settings().metrics_dir is None
    monkeypatch.setenv("KEYGATE_METRICS_DIR", "/tmp/keygate-metrics-a")
    assert str(Settings().metrics_dir) == "/tmp/keygate-metrics-a"
    # prometheus_client's own variable is read too (workers inherit it from `keygate serve`).
    monkeypatch.delenv("KEYGATE_METRICS_DIR")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/keygate-metrics-b")
    assert str(Settings().metrics_dir) == "/tmp/keygate-metrics-b"
