"""`GET /apps?q=&category=`: the catalog searched by name, display name and category."""

from __future__ import annotations

from typing import Any

from tests.gateway.test_errors import assert_error
from tests.support.harness import Tenant


def listed(tenant: Tenant, **query: Any) -> list[str]:
    """The app names `GET /apps` answers with for that query."""
    answer = tenant.http.get("/apps", params=query)
    assert answer.status_code == 200, answer.text
    return [a["app"] for a in answer.json()["apps"]]


def test_every_built_in_app_has_a_category(tenant: Tenant) -> None:
    apps = tenant.http.get("/apps").json()["apps"]
    # The test catalog's own files (tests/support/catalog) have none; every built-in one has.
    built_in = [a for a in apps if not a["docs_url"].startswith("https://example.invalid")]
    assert len(built_in) >= 36
    assert all(a["category"] for a in built_in), [a["app"] for a in built_in if not a["category"]]


def test_q_matches_name_display_name_and_category_in_any_case(tenant: Tenant) -> None:
    # The display name ("Constant Contact") and the name, whatever the case.
    assert listed(tenant, q="CONSTANT con") == ["constant-contact"]
    assert listed(tenant, q="Google") == [
        "google-calendar",
        "google-drive",
        "google-sheets",
    ]
    # A category is matched as text too: every CRM.
    assert listed(tenant, q="crm") == ["hubspot", "pipedrive", "salesforce"]
    assert listed(tenant, q="  no such app  ") == []
    assert len(listed(tenant, q="")) == len(listed(tenant))


def test_category_filters_and_combines_with_q(tenant: Tenant) -> None:
    assert listed(tenant, category="accounting") == ["quickbooks", "xero"]
    assert listed(tenant, category="project-management", q="jira") == ["jira"]
    assert listed(tenant, category="email", q="google") == []


def test_an_unknown_category_is_a_clear_400(tenant: Tenant) -> None:
    answer = tenant.http.get("/apps", params={"category": "games"})
    assert_error(answer, 400, "invalid_request")
    assert "category" in answer.text
