"""An app whose endpoints declare parameters survives operator overrides (re-validation)."""

from __future__ import annotations

from pathlib import Path

from keygate.catalog.loader import AppOverrides, configure_app, load_app_file
from tests.catalog.test_endpoints import PROFILES
from tests.catalog.test_model import OAUTH, app_file


def test_overrides_keep_the_endpoints_parameters(tmp_path: Path) -> None:
    # `in` is the file's name for a parameter's location: re-validating after an override
    # (sandbox mode, a regional base URL) must read it back, not refuse to start.
    spec = load_app_file(app_file(tmp_path, OAUTH, endpoints=[PROFILES]))
    configured = configure_app(spec, AppOverrides(base_url="http://127.0.0.1:9"))
    assert configured.base_url.startswith("http://127.0.0.1:9")
    assert configured.spec.endpoints[0].params[0].location == "path"
    assert configured.spec.endpoints[0].params[0].name == "id"
