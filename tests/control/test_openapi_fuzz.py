"""Schemathesis, every check and every phase, against a real Keygate over HTTP, driven by the
`/openapi.json` that Keygate serves: what `schemathesis run URL --checks all` does, bounded.

It runs schemathesis's engine (the one behind its CLI: examples, coverage, fuzzing and stateful
phases) rather than `@schema.parametrize()`: its lazy `from_fixture` loader does not work with
pytest 9, and the stateful phase comes with the engine. Bounded to a few examples per operation
and no deadline, as the machine is shared.

What is not covered, and why:
- The gateway catch-all `/{app}/{path}` proxies to upstream APIs whose shapes are theirs, not
  Keygate's; it is not in the document (its fuzzing lives in `tests/gateway/`).
- The connect pages, the OAuth callback and `/docs` are pages for a person's browser, not API
  operations; they are not in the document either (`tests/connect/`, `tests/browser/`).
No operation of the document and no check is excluded. One check is enabled but idle:
`object_level_authorization` compares what several identities see, and schemathesis takes
several only through `[auth.wfc]`, which it refuses beside the security-scheme auth used here.
Workspace isolation has its own test (`test_connections.py::test_other_workspace_is_invisible`).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.engine import Status, events, from_schema

from tests.support.harness import KeygateHarness

ALL_CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
]
"""Every check schemathesis has; `max_response_time` needs a limit, and timing is not asserted
on a shared machine."""


def run_schemathesis(url: str, key: str, config: dict[str, Any]) -> tuple[list[str], int]:
    """The failures of a run (one line each) and how many requests it sent."""
    schema = schemathesis.openapi.from_url(
        f"{url}/openapi.json", config=schemathesis.Config.from_dict(config)
    )
    failures: list[str] = []
    requests = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            requests += len(recorder.interactions)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        sample = check.failure_info.code_sample
                        failures.append(f"{recorder.label}: {check.name}: {sample}")
                response = getattr(recorder.interactions.get(case_id), "response", None)
                if response is not None and response.status_code >= 500:
                    failures.append(f"{recorder.label}: server error {response.status_code}")
            if event.status is Status.ERROR:
                failures.append(f"{recorder.label}: error in the run")
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            failures.append(f"fatal: {event.exception!r}")
    assert key not in "\n".join(failures), "a failure report would print the API key"
    return failures, requests


def test_schemathesis_finds_nothing(keygate: KeygateHarness) -> None:
    tenant = keygate.tenant()
    try:
        failures, requests = run_schemathesis(
            keygate.url,
            tenant.key,
            {
                # The key goes in through the document's own security scheme, as a client's would.
                "auth": {"openapi": {"KeygateApiKey": {"bearer": tenant.key}}},
                "checks": {name: {"enabled": True} for name in ALL_CHECKS},
                "generation": {"max-examples": 10},
                "phases": {"stateful": {"max-steps": 10}},
                "request-timeout": 30,
                "seed": 1,
                # No replay of an earlier run's findings, and no files left in the checkout.
                "cache": {"enabled": False},
            },
        )
    finally:
        tenant.close()
    assert not failures, "\n".join(failures)
    assert requests > 100  # it really ran


def test_no_check_is_left_out() -> None:
    """`ALL_CHECKS` is every check schemathesis has (a new one must be added, not skipped)."""
    load_all_checks()
    assert set(CHECKS.get_all_names()) == set(ALL_CHECKS)
