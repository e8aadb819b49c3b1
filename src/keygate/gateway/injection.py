"""Turning a connection's stored credential into the header the upstream expects."""

from __future__ import annotations

from dataclasses import dataclass

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import Method
from keygate.errors import CredentialsUnavailable, StoreUnavailable
from keygate.oauth.lifecycle import TokenLifecycle
from keygate.runtime import Runtime
from keygate.store.reads import CachedReads
from keygate.store.records import ConnectionRecord, CredentialRecord
from keygate.store.schema import utcnow


@dataclass(frozen=True, slots=True)
class Injection:
    """The header to add, and the credential version it came from (to refresh after a 401)."""

    header: tuple[str, str]
    version: int
    refreshable: bool


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

    def __init__(self, runtime: Runtime, lifecycle: TokenLifecycle) -> None:
        self._reads = CachedReads(runtime)
        self._lifecycle = lifecycle
        self._rendered: dict[tuple[str, int], Injection] = {}
        runtime.cache.on_clear(self._rendered.clear)

    async def injection_for(
        self, app: ConfiguredApp, connection: ConnectionRecord
    ) -> tuple[Injection, CredentialRecord]:
        """The credential header for a request on this connection (refreshing if due), and the
        credential it was rendered from."""
        credential = await self._reads.credentials(connection.id)
        if credential is None:
            raise CredentialsUnavailable(
                "This connection has no stored credentials; re-authorize it through its url.",
                headers={"Retry-After": "60"},
            )
        oauth = connection.method == Method.OAUTH2.value
        if oauth and self._lifecycle.needs_refresh(credential):
            try:
                credential = await self._lifecycle.ensure_fresh(app, connection, credential)
            except StoreUnavailable:
                # The refresh needs the store: through an outage, a token that has not expired
                # yet is still good.
                if credential.expires_at is None or credential.expires_at <= utcnow():
                    raise
        return self.render(app, connection, credential), credential

    def render(
        self, app: ConfiguredApp, connection: ConnectionRecord, credential: CredentialRecord
    ) -> Injection:
        """The injection for a given credential, cached per version."""
        key = (connection.id, credential.version)
        rendered = self._rendered.get(key)
        if rendered is None:
            if len(self._rendered) > 100_000:
                self._rendered.clear()
            rendered = Injection(
                render_header(app, connection.method, credential),
                credential.version,
                connection.method == Method.OAUTH2.value
                and credential.get("refresh_token") is not None,
            )
            self._rendered[key] = rendered
        return rendered
