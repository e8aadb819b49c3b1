"""The spec validator itself must reject answers that break the vendor schemas."""

from __future__ import annotations

import httpx
import jsonschema
import pytest

from .specs import validate_cc, validate_klaviyo

JSONAPI = {"content-type": "application/vnd.api+json"}


@pytest.mark.parametrize(
    "body",
    [
        {"contact_id": "not-a-uuid", "email_address": {"address": "a@b.co"}},
        {"contact_id": "9f3c1c1e-8a2b-4c1d-9e6f-0a1b2c3d4e5f", "email_address": {}},
        {"contact_id": "9f3c1c1e-8a2b-4c1d-9e6f-0a1b2c3d4e5f", "created_at": "yesterday"},
    ],
)
def test_cc_validator_rejects_bad_contacts(body: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_cc("/contacts/{contact_id}", "get", httpx.Response(200, json=body))


def test_cc_validator_rejects_body_on_204() -> None:
    with pytest.raises(AssertionError):
        validate_cc("/contacts/{contact_id}", "delete", httpx.Response(204, json={"x": 1}))


def test_klaviyo_validator_rejects_bad_profile() -> None:
    body = {"data": {"type": "list", "id": "x", "attributes": {}, "links": {"self": "u"}}}
    with pytest.raises(jsonschema.ValidationError):
        validate_klaviyo(
            "/api/profiles/{id}", "get", httpx.Response(200, json=body, headers=JSONAPI)
        )


def test_klaviyo_validator_rejects_bad_error() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_klaviyo(
            "/api/profiles",
            "get",
            httpx.Response(400, json={"errors": [{"id": "1"}]}, headers=JSONAPI),
        )


def test_undocumented_status_fails() -> None:
    with pytest.raises(AssertionError):
        validate_cc("/contacts/counts", "get", httpx.Response(418, json={}))
