"""A connection's stored credential, rendered once per version into what the upstream expects."""

from __future__ import annotations

from dataclasses import dataclass

from keygate.catalog.auth import CredentialAuth, CredentialDoesNotFit, render_auth
from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import Method
from keygate.catalog.templates import TemplateValueMissing
from keygate.catalog.values import substitution_values
from keygate.errors import CredentialsUnavailable, InjectionMisconfigured, StoreUnavailable
from keygate.oauth.lifecycle import TokenLifecycle
from keygate.store.cache import StateCache
from keygate.store.reads import CachedReads
from keygate.store.records import ConnectionRecord, CredentialRecord
from keygate.store.schema import utcnow


@dataclass(frozen=True, slots=True)
class Injection:
    """The rendered credential, and the version it came from (to refresh after a 401), with the
    base URL and default headers the connection's parameters and captured values make."""

    auth: CredentialAuth
    version: int
    refreshable: bool
    base_url: str
    default_headers: tuple[tuple[bytes, str, str], ...]


def render_credential(
    app: ConfiguredApp, connection: ConnectionRecord, credential: CredentialRecord
) -> tuple[CredentialAuth, str, tuple[tuple[bytes, str, str], ...]]:
    """The credential applied as the app's catalog entry says for the connection's method, the
    connection's base URL and its default headers.

    The catalog is checked at start-up, so a failure here means it changed under a stored
    connection: an operator's fault, never reported as a credentials outage.
    """
    spec = app.spec.method(Method(connection.method))
    if spec is None:
        raise InjectionMisconfigured(
            f"{app.name} no longer supports the {connection.method} method of connection "
            f"{connection.id}; the operator's catalog must offer it again."
        )
    plain = {name: secret.reveal() for name, secret in credential.values.items()}
    values = substitution_values(spec, connection.params, plain)
    try:
        auth = render_auth(spec, {**values, **plain})
        return auth, app.connection_base_url(spec, values), app.connection_headers(values)
    except CredentialDoesNotFit as exc:
        raise InjectionMisconfigured(
            f"The stored credential of connection {connection.id} does not fit what the catalog "
            f"injects for {app.name}: {exc}. Re-authorize it through its url, or fix the catalog."
        ) from None
    except (TemplateValueMissing, ValueError) as exc:
        # A parameter or captured value the catalog now names and the connection lacks.
        raise InjectionMisconfigured(
            f"Connection {connection.id} lacks a value the {app.name} catalog entry names "
            f"({exc}). Create a new connection with its params, or fix the catalog."
        ) from None


class Injector:
    """Rendered credentials per connection, once per credential version.

    `reads` gives the stored credential, `lifecycle` refreshes it when due, and `cache` says
    when the rendered ones must go (with every cached record, on any write).
    """

    def __init__(self, reads: CachedReads, lifecycle: TokenLifecycle, cache: StateCache) -> None:
        self._reads = reads
        self._lifecycle = lifecycle
        self._rendered: dict[tuple[str, int], Injection] = {}
        cache.on_clear(self._rendered.clear)

    async def injection_for(
        self, app: ConfiguredApp, connection: ConnectionRecord
    ) -> tuple[Injection, CredentialRecord]:
        """The rendered credential for a request on this connection (refreshing if due), and
        the credential it was rendered from."""
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
            auth, base_url, headers = render_credential(app, connection, credential)
            rendered = Injection(
                auth,
                credential.version,
                connection.method == Method.OAUTH2.value
                and credential.get("refresh_token") is not None,
                base_url,
                headers,
            )
            self._rendered[key] = rendered
        return rendered
