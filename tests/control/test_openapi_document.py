"""`/openapi.json` says what Keygate does: refs resolve, the key scheme, Keygate's real errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.test_errors import assert_error
from tests.support.harness import KeygateHarness, Tenant

CONTROL = {
    "/connections",
    "/connections/{connection_id}",
    "/apps",
    "/apps/{app}",
    "/apps/skill",
    "/apps/{app}/skill",
    "/logs",
    "/events",
    "/webhooks",
    "/webhooks/{webhook_id}",
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
}


@pytest.fixture(scope="module")
def document(keygate: KeygateHarness) -> dict[str, Any]:
    """The document a running Keygate serves."""
    response = httpx.get(f"{keygate.url}/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` anywhere under node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]
    body = document["paths"]["/connections"]["post"]["requestBody"]
    assert "$defs" not in str(body)


def test_the_api_key_is_a_documented_security_scheme(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["KeygateApiKey"]["type"] == "http"
    assert schemes["KeygateApiKey"]["scheme"] == "bearer"
    for path, _, operation in operations(document):
        if path in CONTROL:
            assert operation["security"] == [{"KeygateApiKey": []}], path
            assert "401" in operation["responses"], path
        else:
            assert "security" not in operation, path  # operations endpoints take no key


def test_errors_are_documented_as_keygate_answers_them(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        assert "422" not in operation["responses"], f"{method} {path}"
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    responses = {(p, m): set(o["responses"]) for p, m, o in operations(document)}
    assert {"201", "400", "401", "413"} <= responses[("/connections", "post")]
    assert {"200", "400", "401"} <= responses[("/connections", "get")]
    assert {"200", "401", "404"} <= responses[("/connections/{connection_id}", "get")]
    assert {"200", "401", "404"} <= responses[("/connections/{connection_id}", "delete")]
    assert {"200", "401", "404"} <= responses[("/apps/{app}", "get")]
    error = document["paths"]["/connections"]["post"]["responses"]["400"]
    assert error["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    # A request that is not HTTP at all is refused by the HTTP server, in plain text.
    assert set(error["content"]) == {"application/json", "text/plain"}
    assert error["headers"]["Keygate-Error"]["required"] is False
    # Every authenticated operation can be refused as malformed or over a rate limit (the
    # probes and /metrics are never limited).
    for path, method, operation in operations(document):
        if "401" in operation["responses"]:
            assert {"400", "429"} <= set(operation["responses"]), f"{method} {path}"
    not_found = document["paths"]["/apps/{app}"]["get"]["responses"]["404"]
    assert not_found["headers"]["Keygate-Error"]["required"] is True
    assert "Retry-After" in document["paths"]["/apps"]["get"]["responses"]["429"]["headers"]


def test_metrics_are_documented_as_text(keygate: KeygateHarness, document: dict[str, Any]) -> None:
    documented = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(documented) == {"text/plain"}
    served = httpx.get(f"{keygate.url}/metrics")
    assert served.headers["content-type"].startswith("text/plain")


def test_the_body_schema_names_this_catalog(
    keygate: KeygateHarness, tenant: Tenant, document: dict[str, Any]
) -> None:
    schema = document["paths"]["/connections"]["post"]["requestBody"]["content"]
    variants = schema["application/json"]["schema"]["anyOf"]
    offered = {(v["properties"]["app"]["const"], tuple(v["required"])) for v in variants}
    apps = {a["app"]: a["methods"] for a in tenant.http.get("/apps").json()["apps"]}
    assert {app for app, _ in offered} == set(apps)
    # Every variant the document offers is one Keygate takes.
    for variant in variants:
        app = variant["properties"]["app"]["const"]
        method = variant["properties"]["method"]
        body = {"app": app, "method": method.get("const", method.get("enum", [None])[0])}
        response = tenant.http.post("/connections", json=body)
        assert response.status_code == 201, (body, response.text)


def test_list_filters_accept_exactly_what_the_document_allows(
    tenant: Tenant, document: dict[str, Any]
) -> None:
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/connections"]["get"]["parameters"]
    }
    codes = {"app": "unknown_app", "status": "invalid_request", "method": "invalid_request"}
    for name, code in codes.items():
        allowed = parameters[name]["enum"]
        assert "" not in allowed
        for value in allowed:
            assert tenant.http.get("/connections", params={name: value}).status_code == 200
        # An empty filter is refused, as the document says.
        assert_error(tenant.http.get(f"/connections?{name}="), 400, code)
    assert tenant.http.get("/connections?cursor=").status_code == 200  # the pattern allows it


def test_a_405_names_every_method_of_the_path(keygate: KeygateHarness) -> None:
    response = httpx.request("PUT", f"{keygate.url}/connections")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


def test_the_skills_are_documented_as_markdown_in_two_languages(document: dict[str, Any]) -> None:
    for path in ("/apps/skill", "/apps/{app}/skill"):
        operation = document["paths"][path]["get"]
        assert list(operation["responses"]["200"]["content"]) == ["text/markdown"]
        (lang,) = [p for p in operation["parameters"] if p["name"] == "lang"]
        assert lang["in"] == "query"
        assert lang["schema"]["enum"] == ["en", "zh"]
        assert lang["schema"]["default"] == "en"
        assert list(operation["responses"]["401"]["content"]) == ["application/json"]
        assert "application/json" in operation["responses"]["400"]["content"]
    assert "404" in document["paths"]["/apps/{app}/skill"]["get"]["responses"]
