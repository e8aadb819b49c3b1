"""Turning a connection's stored credential into the header the upstream expects."""

from __future__ import annotations

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import Method
from keygate.errors import CredentialsUnavailable
from keygate.runtime import Runtime
from keygate.store.reads import CachedReads
from keygate.store.records import ConnectionRecord, CredentialRecord


def render_header(app: ConfiguredApp, method: str, credential: CredentialRecord) -> tuple[str, str]:
    """The (name, value) the catalog's injection template makes of a credential."""
    spec = app.spec.method(Method(method))
    if spec is None:
        raise CredentialsUnavailable(f"{app.name} no longer supports the {method} method.")
    values = {name: secret.reveal() for name, secret in credential.values.items()}
    try:
        return spec.inject.header, spec.inject.template.format_map(values)
    except KeyError as exc:
        raise CredentialsUnavailable(
            f"The stored credential lacks the field {exc.args[0]!r} the catalog injects."
        ) from None


class Injector:
    """Credential headers per connection, rendered once per credential version."""

    def __init__(self, runtime: Runtime) -> None:
        self._reads = CachedReads(runtime)
        self._rendered: dict[tuple[str, int], tuple[str, str]] = {}
        runtime.cache.on_clear(self._rendered.clear)

    async def header_for(self, app: ConfiguredApp, connection: ConnectionRecord) -> tuple[str, str]:
        """The credential header for a request on this connection."""
        credential = await self._reads.credentials(connection.id)
        if credential is None:
            raise CredentialsUnavailable(
                "This connection has no stored credentials; re-authorize it through its url.",
                headers={"Retry-After": "60"},
            )
        key = (connection.id, credential.version)
        rendered = self._rendered.get(key)
        if rendered is None:
            if len(self._rendered) > 100_000:
                self._rendered.clear()
            rendered = render_header(app, connection.method, credential)
            self._rendered[key] = rendered
        return rendered
