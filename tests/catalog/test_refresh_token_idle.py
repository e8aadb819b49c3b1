"""`refresh_token_idle_days` on an OAUTH2 method: validated at start-up, set for both built-ins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keygate.catalog.loader import load_app_file, load_catalog
from keygate.errors import ConfigurationError
from tests.catalog.test_model import OAUTH, app_file


@pytest.mark.parametrize("days", [0, -5, 3651, 1.5, "soon"])
def test_a_bad_idle_period_stops_start_up_naming_the_field(tmp_path: Path, days: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_app_file(app_file(tmp_path, {**OAUTH, "refresh_token_idle_days": days}))
    assert "demo.yaml" in str(caught.value)
    assert "methods.0.OAUTH2.refresh_token_idle_days" in str(caught.value)


def test_the_providers_documented_idle_periods_are_in_the_catalog() -> None:
    catalog = load_catalog()
    days = {}
    for name in ("klaviyo", "constant-contact"):
        method = catalog[name].methods[0]
        assert method.type == "OAUTH2"
        days[name] = getattr(method, "refresh_token_idle_days", None)
    assert days == {"klaviyo": 90, "constant-contact": 180}  # shared/spec/PROVIDERS.md
