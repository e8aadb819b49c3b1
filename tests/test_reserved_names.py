"""App names can never shadow a surface: `RESERVED_NAMES` against the routes actually mounted
and the surfaces the contract lists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from keygate.app import build_control_app
from keygate.catalog.loader import RESERVED_NAMES, load_app_file
from keygate.errors import ConfigurationError
from tests.support.shared import shared_dir

_SURFACE_ROW = re.compile(r"^\|\s*`/")
_PATH = re.compile(r"`/([^/`?{ ]+)")


def _paths(routes: list[Any], prefix: str = "") -> list[str]:
    """Every path the app routes, walking into included routers (FastAPI wraps them)."""
    found: list[str] = []
    for route in routes:
        if hasattr(route, "path"):
            found.append(prefix + route.path)
        elif hasattr(route, "original_router"):
            found += _paths(route.original_router.routes, prefix + route.include_context.prefix)
    return found


def test_every_mounted_route_is_reserved() -> None:
    paths = _paths(build_control_app().routes)
    assert "/connections/{connection_id}" in paths, "the walk missed the included routers"
    mounted = {path.lstrip("/").split("/", 1)[0] for path in paths}
    mounted.discard("")
    assert mounted, "no routes were read"
    assert mounted <= RESERVED_NAMES, f"routes an app name could shadow: {mounted - RESERVED_NAMES}"


def test_every_surface_of_the_contract_is_reserved() -> None:
    shared = shared_dir()
    if shared is None:
        pytest.skip("shared/ is not beside the checkout: the contract cannot be read")
    surfaces: set[str] = set()
    for line in (shared / "spec" / "API.md").read_text().splitlines():
        if _SURFACE_ROW.match(line):
            surfaces |= {p for p in _PATH.findall(line.split("|")[1]) if not p.startswith("{")}
    assert {"connections", "apps", "mcp", "webhooks"} <= surfaces, "the surfaces table was not read"
    missing = surfaces - RESERVED_NAMES
    assert not missing, f"contract surfaces not reserved: {missing}"


@pytest.mark.parametrize("name", ["skill", "keygate", "connections"])
def test_a_catalog_file_with_a_reserved_name_stops_start_up(tmp_path: Path, name: str) -> None:
    # `skill` would be shadowed by GET /apps/skill, `keygate` by the general skill's folder.
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "display_name": "Clash",
                "docs_url": "https://example.invalid/docs",
                "base_url": "https://api.example.invalid",
                "methods": [
                    {
                        "type": "API_KEY",
                        "fields": [{"name": "api_key", "label": "Key"}],
                        "inject": {"header": "X-Key", "template": "{api_key}"},
                    }
                ],
            }
        )
    )
    with pytest.raises(ConfigurationError) as caught:
        load_app_file(path)
    assert str(path) in str(caught.value)
    assert f"name {name!r} is a reserved" in str(caught.value)
