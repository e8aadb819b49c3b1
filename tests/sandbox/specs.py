"""Validate sandbox responses against the vendors' own OpenAPI documents.

Klaviyo publishes OpenAPI 3.0 (`nullable`, `components`); Constant Contact publishes Swagger 2.0
(`definitions`). Both are turned into JSON Schema and checked with `jsonschema`, with formats
(`date-time`, `uuid`) enforced so a malformed timestamp or id fails.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml


def _vendor_specs() -> Path | None:
    # `shared/` stands beside the checkout (locally and in CI); KEYGATE_VENDOR_SPECS, when set,
    # is the only place looked at.
    if "KEYGATE_VENDOR_SPECS" in os.environ:
        candidates = [Path(os.environ["KEYGATE_VENDOR_SPECS"])]
    else:
        candidates = [
            Path(__file__).resolve().parents[3] / "shared" / "vendor-specs",
            Path("/work/shared/vendor-specs"),
        ]
    return next((c for c in candidates if c.is_dir()), None)


_FOUND = _vendor_specs()


def vendor_specs() -> Path:
    """The vendor specs directory; a test that needs it is skipped, with why, when it is absent."""
    if _FOUND is None:
        pytest.skip(
            "vendor specs not found: put shared/vendor-specs beside the checkout "
            "or set KEYGATE_VENDOR_SPECS"
        )
    return _FOUND


KLAVIYO_FILES = ("category_profiles.json", "category_lists.json", "category_accounts.json")
CC_FILE = "constant-contact/cc-v3-swagger-3.0.178.yaml"

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
        raise ValueError(f"not an RFC 3339 date-time: {value}")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if isinstance(value, str):
        datetime.strptime(value, "%Y-%m-%d")
    return True


def _nullable_to_json_schema(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 `nullable: true` into JSON Schema `type: [..., "null"]`."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False):
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        else:
            converted = {"anyOf": [{"type": "null"}, converted]}
    return converted


@functools.cache
def _klaviyo_documents() -> dict[str, dict[str, Any]]:
    documents = {}
    for name in KLAVIYO_FILES:
        documents[name] = _nullable_to_json_schema(
            json.loads((vendor_specs() / "klaviyo" / name).read_text())
        )
    return documents


@functools.cache
def _cc_document() -> dict[str, Any]:
    return yaml.safe_load((vendor_specs() / CC_FILE).read_text())


def _status_key(responses: dict[str, Any], status: int) -> str:
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return key
    raise AssertionError(f"status {status} is not documented; documented: {sorted(responses)}")


def klaviyo_schema(path: str, method: str, status: int) -> dict[str, Any] | None:
    """Return the vendor response schema for a Klaviyo operation (None: no body documented)."""
    for document in _klaviyo_documents().values():
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None:
            continue
        response = operation["responses"][_status_key(operation["responses"], status)]
        if "$ref" in response:
            response = document["components"]["responses"][response["$ref"].split("/")[-1]]
        content = response.get("content")
        if not content:
            return None
        schema = content["application/vnd.api+json"]["schema"]
        return {"components": document["components"], "allOf": [schema]}
    raise AssertionError(f"{method} {path} is not in the Klaviyo spec")


def cc_schema(path: str, method: str, status: int) -> dict[str, Any] | None:
    """Return the vendor response schema for a Constant Contact operation (None: no body)."""
    document = _cc_document()
    operation = document["paths"][path][method.lower()]
    response = operation["responses"][_status_key(operation["responses"], status)]
    schema = response.get("schema")
    if schema is None:
        return None
    return {"definitions": document["definitions"], "allOf": [schema]}


def _validate(schema: dict[str, Any] | None, response: httpx.Response) -> None:
    if schema is None:
        assert not response.content, f"undocumented body: {response.text[:200]}"
        return
    jsonschema.Draft4Validator(schema, format_checker=FORMATS).validate(response.json())


def validate_klaviyo(path: str, method: str, response: httpx.Response) -> None:
    """Assert a Klaviyo sandbox response matches the vendor spec for (path, method, status)."""
    schema = klaviyo_schema(path, method, response.status_code)
    if schema is not None:
        assert response.headers["content-type"].startswith("application/vnd.api+json")
    _validate(schema, response)


def validate_cc(path: str, method: str, response: httpx.Response) -> None:
    """Assert a Constant Contact sandbox response matches the vendor spec (path without /v3)."""
    _validate(cc_schema(path, method, response.status_code), response)
