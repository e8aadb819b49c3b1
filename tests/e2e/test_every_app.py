"""Every app of the catalog, every method, end to end against the sandbox its own entry makes.

Create (with the entry's example parameters) → connect through the connect page → call through
the gateway → expire → refresh where refreshable → call again → delete (revoking where the
entry has a revoke URL). A new catalog file is covered here with no new test code.
"""

from __future__ import annotations

import httpx
import pytest

from keygate.catalog.model import ApiKeyMethod, Method, OAuth2Method
from tests.e2e.flows import call, connect, create
from tests.support.generic import GenericKeygate, every_app
from tests.support.harness import Tenant

CASES = [(name, m.type.value) for name, spec in sorted(every_app().items()) for m in spec.methods]


@pytest.mark.parametrize(("app", "method"), CASES, ids=[f"{a}-{m}" for a, m in CASES])
def test_every_app_end_to_end(
    generic: GenericKeygate, tenant: Tenant, browser: httpx.Client, app: str, method: str
) -> None:
    spec = generic.catalog[app]
    chosen = spec.method(Method(method))
    assert chosen is not None
    provider = generic.provider(app)
    params = {p.name: p.example for p in spec.params_for(chosen)}
    if isinstance(chosen, ApiKeyMethod):
        for field in chosen.fields:
            # The sandbox accepts the field's example; a stand-in cannot match any pattern.
            assert field.example or not field.pattern, (
                f"{app}: field {field.name} has a pattern but no example for the sandbox to take"
            )

    created = create(tenant, app, method, params)
    assert created["params"] == params
    done = connect(generic, browser, spec, Method(method), created["url"])
    assert done.status_code == 200, (done.text, provider.refusals)
    assert "is connected" in done.text
    connection_id = created["connection_id"]

    first = call(tenant, app, connection_id)
    assert first.status_code == 200, (first.text, provider.refusals)
    assert first.json()["method"] == method

    if isinstance(chosen, OAuth2Method):
        refreshes = provider.counts["token_refresh_token"]
        lifetime = chosen.default_expires_in or provider.access_ttl
        generic.clock.advance(lifetime + 1)
        again = call(tenant, app, connection_id)
        if not chosen.expires:
            assert again.status_code == 200, again.text  # the token never expires
        elif chosen.refresh_tokens:
            assert again.status_code == 200, (again.text, provider.refusals)
            assert provider.counts["token_refresh_token"] == refreshes + 1
            assert not provider.counts["token_refused"], provider.refusals
        else:
            assert again.status_code == 401, again.text  # the provider's answer, passed on

    deleted = tenant.http.delete(f"/connections/{connection_id}")
    assert deleted.status_code == 200, deleted.text
    if isinstance(chosen, OAuth2Method) and chosen.revoke_url is not None:
        assert provider.counts["revoke"] >= 1
        assert not provider.counts["revoke_refused"], provider.refusals
        assert provider.live_tokens() == []
