"""Every catalog endpoint is one the vendor documents: method, path and each parameter, as in the
vendor's own OpenAPI document (`shared/vendor-specs/`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from keygate.catalog.loader import load_catalog
from keygate.catalog.model import AppSpec
from tests.support.shared import shared_dir

_SHARED = shared_dir()
pytestmark = pytest.mark.skipif(
    _SHARED is None, reason="shared/vendor-specs is not beside this checkout"
)


def _klaviyo() -> tuple[str, dict[str, Any]]:
    assert _SHARED is not None
    path = _SHARED / "vendor-specs" / "klaviyo" / "stable.json"
    return "", json.loads(path.read_text())


def _constant_contact() -> tuple[str, dict[str, Any]]:
    assert _SHARED is not None
    path = _SHARED / "vendor-specs" / "constant-contact" / "cc-v3-swagger-3.0.178.yaml"
    document = yaml.safe_load(Path(path).read_text())
    return str(document["basePath"]), document  # Swagger 2.0: paths are under basePath (/v3)


VENDOR_SPECS = {"klaviyo": _klaviyo, "constant-contact": _constant_contact}


def _parameters(document: dict[str, Any], path_item: dict[str, Any], method: str) -> set[str]:
    """(in, name) of every parameter of one operation, `$ref`s resolved."""
    found = set()
    for parameter in [*path_item.get("parameters", []), *path_item[method].get("parameters", [])]:
        if "$ref" in parameter:  # '#/components/parameters/x' or '#/parameters/x'
            target: Any = document
            for part in parameter["$ref"].lstrip("#/").split("/"):
                target = target[part]
            parameter = target
        found.add(f"{parameter['in']} {parameter['name']}")
    return found


@pytest.mark.parametrize("app", sorted(VENDOR_SPECS))
def test_every_endpoint_is_in_the_vendor_spec(app: str) -> None:
    spec: AppSpec = load_catalog()[app]
    base_path, document = VENDOR_SPECS[app]()
    assert spec.endpoints, f"{app} lists no endpoints"
    missing = []
    for endpoint in spec.endpoints:
        assert endpoint.path.startswith(base_path + "/")
        path_item = document["paths"].get(endpoint.path[len(base_path) :])
        method = endpoint.method.lower()
        if path_item is None or method not in path_item:
            missing.append(f"{endpoint.name}: {endpoint.method} {endpoint.path}")
            continue
        documented = _parameters(document, path_item, method)
        for param in endpoint.params:
            if f"{param.location} {param.name}" not in documented:
                missing.append(f"{endpoint.name}: {param.location} parameter {param.name}")
    assert not missing, "not in the vendor's OpenAPI document:\n" + "\n".join(missing)


SEEDS_NAME = {
    # What the seeds (shared/seeds/) say each app can do, as (method, path) they show or name.
    "constant-contact": [
        ("GET", "/v3/account/summary"),
        ("GET", "/v3/account/emails"),
        ("GET", "/v3/account/user/privileges"),
        ("GET", "/v3/contacts"),
        ("GET", "/v3/contacts/{contact_id}"),
        ("POST", "/v3/contacts"),
        ("PUT", "/v3/contacts/{contact_id}"),
        ("DELETE", "/v3/contacts/{contact_id}"),
        ("POST", "/v3/contacts/sign_up_form"),
        ("GET", "/v3/contacts/counts"),
        ("GET", "/v3/contact_lists"),
        ("GET", "/v3/contact_lists/{list_id}"),
        ("POST", "/v3/contact_lists"),
        ("PUT", "/v3/contact_lists/{list_id}"),
        ("DELETE", "/v3/contact_lists/{list_id}"),
        ("GET", "/v3/contact_tags"),
        ("POST", "/v3/contact_tags"),
        ("PUT", "/v3/contact_tags/{tag_id}"),
        ("DELETE", "/v3/contact_tags/{tag_id}"),
        ("GET", "/v3/contact_custom_fields"),
        ("POST", "/v3/contact_custom_fields"),
        ("DELETE", "/v3/contact_custom_fields/{custom_field_id}"),
    ],
    "klaviyo": [
        ("GET", "/api/profiles"),
        ("GET", "/api/profiles/{id}"),
        ("POST", "/api/profiles"),
        ("PATCH", "/api/profiles/{id}"),
        *[
            ("GET", f"/api/{kind}")
            for kind in (
                "lists",
                "segments",
                "campaigns",
                "flows",
                "events",
                "metrics",
                "templates",
                "catalog-items",
                "webhooks",
            )
        ],
    ],
}


@pytest.mark.parametrize("app", sorted(SEEDS_NAME))
def test_every_endpoint_the_seeds_name_is_listed(app: str) -> None:
    listed = {(e.method, e.path) for e in load_catalog()[app].endpoints}
    assert sorted(set(SEEDS_NAME[app]) - listed) == []
