"""Reading the catalog files and applying the operator's per-app overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from keygate.catalog.caller_slots import CallerSlot, caller_slots
from keygate.catalog.model import ApiKeyMethod, AppSpec, Method, OAuth2Method
from keygate.catalog.templates import fill, render_url
from keygate.errors import ConfigurationError
from keygate.secret import Secret

BUILTIN_DIR = Path(__file__).parent / "apps"

# First path segments that are Keygate's own surfaces, so never app names: those mounted today
# and those the contract reserves for surfaces to come (`tests/test_reserved_names.py` checks
# both against the routes and the contract). Kept here, low in the tree, because the catalog
# loader refuses such names and must not import the web app to learn them.
RESERVED_NAMES = frozenset(
    {
        "connections",
        "apps",
        "connect",
        "oauth",
        "healthz",
        "readyz",
        "metrics",
        "openapi.json",
        "docs",
        "ui",
        "static",
        "favicon.ico",
        "robots.txt",
        "mcp",
        "logs",
        "events",
        "webhooks",
    }
)
# Names no app may take though they are no surface: `GET /apps/skill` is the general skill
# (an app `skill` would lose `/apps/{app}`), and `keygate` is that skill's export folder.
RESERVED_APP_NAMES = RESERVED_NAMES | {"skill", "keygate"}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_app_file(path: Path) -> AppSpec:
    """Parse and validate one catalog file; errors name the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"catalog file {path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(f"catalog file {path}: expected a mapping at the top level")
    try:
        spec = AppSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"catalog file {path}: {_describe(exc)}") from exc
    if spec.name != path.stem:
        raise ConfigurationError(
            f"catalog file {path}: name {spec.name!r} must match the file name {path.stem!r}"
        )
    if spec.name in RESERVED_APP_NAMES:
        raise ConfigurationError(f"catalog file {path}: name {spec.name!r} is a reserved path")
    return spec


def load_catalog(extra_dir: Path | None = None) -> dict[str, AppSpec]:
    """The built-in apps, plus (overriding by name) the files of an operator's directory."""
    files = sorted(BUILTIN_DIR.glob("*.yaml"))
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise ConfigurationError(f"KEYGATE_CATALOG_DIR {extra_dir} is not a directory")
        files += sorted(extra_dir.glob("*.yaml"))
    return {spec.name: spec for spec in (load_app_file(p) for p in files)}


class AppOverrides(BaseModel):
    """Operator settings for an app: OAuth client and URL overrides. None means 'as catalogued'.

    The one type for every source: `KEYGATE_APPS__<APP>__<FIELD>` variables (`Settings.apps`),
    the store (`keygate apps configure`), and their merge.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    client_id: str | None = None
    client_secret: Secret | None = None
    base_url: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    revoke_url: str | None = None
    device_authorization_url: str | None = None
    scopes: tuple[str, ...] | None = None
    sandbox_origin: str | None = None
    """Send every URL of the app, once rendered for a connection, to this origin with its host
    as the first path segment (`https://acme.zendesk.com/api` → `{origin}/acme.zendesk.com/api`):
    the generic provider sandbox (`keygate.sandbox.generic`) plays any catalog app this way,
    and sees the host each connection's parameters and captured values made."""

    @field_validator("client_secret", mode="before")
    @classmethod
    def _wrap_secret(cls, value: Any) -> Any:
        # The environment gives a plain string; it is wrapped at once so no repr shows it.
        return Secret(value) if isinstance(value, str) else value

    def merged_over(self, lower: AppOverrides) -> AppOverrides:
        """These overrides, falling back to `lower` field by field."""
        return AppOverrides(
            client_id=self.client_id or lower.client_id,
            client_secret=self.client_secret or lower.client_secret,
            base_url=self.base_url or lower.base_url,
            authorize_url=self.authorize_url or lower.authorize_url,
            token_url=self.token_url or lower.token_url,
            revoke_url=self.revoke_url or lower.revoke_url,
            device_authorization_url=(
                self.device_authorization_url or lower.device_authorization_url
            ),
            scopes=self.scopes if self.scopes is not None else lower.scopes,
            sandbox_origin=self.sandbox_origin or lower.sandbox_origin,
        )


@dataclass(frozen=True, slots=True)
class ConfiguredApp:
    """An app as this deployment runs it: the catalog entry with overrides applied."""

    spec: AppSpec
    client_id: str | None
    client_secret: Secret | None
    sandbox_origin: str | None = None

    base_url: str = field(init=False)
    """The upstream origin (and base path) without a trailing slash; a template if the app's
    connections give it parameters (see `connection_base_url`)."""
    default_headers: tuple[tuple[bytes, str, str], ...] = field(init=False)
    """The catalog's default headers as (lower-case name bytes, name, value), for the proxy."""
    caller_slots: tuple[CallerSlot, ...] = field(init=False)
    """Where the app's own SDK puts its credential: a caller's Keygate key is accepted there."""

    def __post_init__(self) -> None:
        # Computed once here: the proxy reads both on every request.
        object.__setattr__(self, "base_url", str(self.spec.base_url).rstrip("/"))
        headers = tuple((k.lower().encode(), k, v) for k, v in self.spec.default_headers.items())
        object.__setattr__(self, "default_headers", headers)
        object.__setattr__(self, "caller_slots", caller_slots(self.spec))

    @property
    def name(self) -> str:
        """The app name, as in the gateway path."""
        return self.spec.name

    def oauth(self) -> OAuth2Method | None:
        """The app's OAuth2 method, if any."""
        method = self.spec.method(Method.OAUTH2)
        return method if isinstance(method, OAuth2Method) else None

    def url(self, template: str, values: Mapping[str, str]) -> str:
        """A URL template of this app rendered for one connection's parameters and captured
        values (and sent to the sandbox origin when one is set)."""
        return render_url(template, values, self.sandbox_origin)

    def connection_base_url(
        self, method: OAuth2Method | ApiKeyMethod, values: Mapping[str, str]
    ) -> str:
        """The upstream base URL of one connection, without a trailing slash."""
        template = self.spec.base_url_for(method)
        if self.sandbox_origin is None and template == self.spec.base_url and "{" not in template:
            return self.base_url
        return self.url(template, values).rstrip("/")

    def connection_headers(self, values: Mapping[str, str]) -> tuple[tuple[bytes, str, str], ...]:
        """The default headers of one connection, templates filled in (as `default_headers`)."""
        if not any("{" in v for v in self.spec.default_headers.values()):
            return self.default_headers
        return tuple(
            (key, name, fill(self.spec.default_headers[name], values))
            for key, name, _ in self.default_headers
        )


def configure_app(spec: AppSpec, overrides: AppOverrides) -> ConfiguredApp:
    """Apply overrides and re-validate, so a bad override URL is refused like a bad file."""
    # by_alias: fields are read back under their file names (an endpoint parameter's `in`).
    data: dict[str, Any] = spec.model_dump(mode="json", by_alias=True)
    if overrides.base_url:
        data["base_url"] = overrides.base_url
    for method in data["methods"]:
        if method["type"] != Method.OAUTH2.value:
            continue
        for url_field in ("authorize_url", "token_url", "revoke_url", "device_authorization_url"):
            value = getattr(overrides, url_field)
            if value:
                method[url_field] = value
        if overrides.scopes is not None:
            method["scopes"] = list(overrides.scopes)
    try:
        configured = AppSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"settings for app {spec.name}: {_describe(exc)}") from exc
    return ConfiguredApp(
        configured, overrides.client_id, overrides.client_secret, overrides.sandbox_origin
    )
