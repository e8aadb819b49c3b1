"""The one Settings object: read from the environment once, at the edge, then passed down."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from keygate.catalog.loader import AppOverrides
from keygate.local_url import local_url

_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Settings(BaseSettings):
    """Every knob Keygate has; environment variables carry the `KEYGATE_` prefix."""

    model_config = SettingsConfigDict(
        env_prefix="KEYGATE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path(".keygate")
    database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1)
    """PostgreSQL connections each process keeps open (plus one for LISTEN)."""
    database_max_overflow: int = Field(default=10, ge=0)
    """PostgreSQL connections a process may open beyond the pool under load, closed after."""
    public_url: str = ""
    """The origin browsers and callers use; unset, it is `served_url` (the host and port served)."""
    encryption_key: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    catalog_dir: Path | None = None
    apps: dict[str, AppOverrides] = Field(default_factory=dict)

    upstream_connect_timeout: float = Field(default=10.0, gt=0)
    upstream_read_timeout: float = Field(default=120.0, gt=0)
    upstream_pool_size: int = Field(default=256, ge=1)
    max_request_body: int = Field(default=512 * 1024 * 1024, ge=0)
    max_control_body: int = Field(default=1024 * 1024, ge=1024)

    mcp_max_body: int = Field(default=100_000, ge=1024)
    """Bytes of an app's answer the MCP tools `call_api` and `run_action` return; a longer body
    is cut there and flagged `truncated` (an agent's context is small)."""

    session_ttl_seconds: int = Field(default=3600, ge=60)
    ui_session_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 24 * 3600)
    """How long a dashboard sign-in (`/ui`) lasts before the person signs in again."""
    cache_poll_interval: float = Field(default=1.0, gt=0)
    stale_if_error_seconds: float = Field(default=60.0, ge=0)
    """How long a record a write made stale may still be served if the database then becomes
    unreachable before it is reloaded (0: never); see "Database outages" in the README."""
    refresh_margin_seconds: int = Field(default=300, ge=0)
    refresh_backoff_base: float = Field(default=1.0, gt=0)
    refresh_backoff_cap: float = Field(default=300.0, gt=0)
    token_timeout: float = Field(default=30.0, gt=0)

    proactive_refresh: bool = True
    """Refresh OAuth tokens in the background, without traffic: access tokens once they are due
    (the refresh margin) and refresh tokens before an app's `refresh_token_idle_days` runs out."""
    proactive_refresh_interval: float = Field(default=30.0, gt=0)
    """Seconds between the background scheduler's looks for due connections (±20 % jitter)."""
    proactive_refresh_concurrency: int = Field(default=8, ge=1, le=256)
    """Token requests the scheduler of one process makes at once."""
    proactive_refresh_batch: int = Field(default=100, ge=1, le=10_000)
    """Connections the scheduler claims from the database in one statement."""

    rate_limit_per_second: float = Field(default=0.0, ge=0)
    """Requests per second each API key may make through the gateway (0: no limit): across the
    whole fleet on PostgreSQL (every replica needs the same value), per process on SQLite."""
    rate_limit_burst: int = Field(default=0, ge=0)
    """Requests a key may make at once before the per-second rate applies (0: one second's)."""
    control_rate_limit_per_second: float = Field(default=20.0, ge=0)
    """Control-plane requests per second (connections, apps, connect pages, docs; not /healthz,
    /readyz, /metrics) each client address may make, per process (0: no limit)."""
    control_rate_limit_burst: int = Field(default=100, ge=0)
    """Control-plane requests an address may make at once (0: one second's)."""
    unknown_key_rate_limit_per_second: float = Field(default=2.0, ge=0)
    """Lookups of API keys that turn out unknown or revoked, per second and client address, per
    process, on both surfaces; past it, that address's keys the cache does not already hold are
    refused 429 without a lookup (0: no limit)."""
    unknown_key_rate_limit_burst: int = Field(default=20, ge=0)
    """Failed key lookups an address may cause at once (0: one second's)."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Addresses or networks of the proxies in front of Keygate (comma-separated, or a JSON
    list): for a request from one, the client address of the limits above is the last
    `X-Forwarded-For` entry."""

    header_read_timeout: float = Field(default=30.0, gt=0)
    """Seconds a connection has to send a request's headers, counted from when it opens or when
    its previous response ends: silent, slow-header and idle keep-alive connections are closed
    after it (granian's HTTP/1 header read timeout)."""
    body_idle_timeout: float = Field(default=30.0, gt=0)
    """Seconds a request body may go without sending a byte before Keygate answers 408
    `request_timeout` (an upstream request it was feeding is aborted)."""
    max_concurrent_requests: int = Field(default=1024, ge=1)
    """Connections each worker process serves at once (granian's backpressure, which counts
    idle keep-alive connections too); more wait in the listen backlog for a slot."""

    metrics_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("KEYGATE_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"),
    )
    """Where the worker processes of one server keep their metrics, so `/metrics` sums them
    (prometheus_client's multiprocess mode); `keygate serve` sets it for its workers to a fresh
    directory. Unset: each process keeps its own in memory. `KEYGATE_METRICS_DIR`, or the
    library's own `PROMETHEUS_MULTIPROC_DIR`."""

    migrate_on_start: bool = True
    access_log: bool = True
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    """`text`: one plain line per record; `json`: one JSON object per line. Both for the access
    log and for every logger (Keygate's and granian's)."""

    request_log: bool = True
    """Whether gateway requests are stored for `GET /logs` (the access log is separate)."""
    request_log_retention_days: float = Field(default=7.0, gt=0)
    """Stored requests older than this are pruned."""
    request_log_max_rows: int = Field(default=1_000_000, ge=1)
    """At most this many stored requests are kept (the oldest are pruned first)."""
    request_log_prune_interval: float = Field(default=300.0, gt=0)
    """Seconds between prunings of the stored request log, audit events and deliveries."""
    event_retention_days: float = Field(default=90.0, gt=0)
    """Audit events older than this are pruned, and so are webhook deliveries that are done
    (delivered, or failed for good) and their attempts; a pending delivery never is."""
    request_log_queue_rows: int = Field(default=20_000, ge=1)
    """Requests a process holds for the store while it is slow or down; beyond, they are
    dropped and counted (`keygate_request_log_dropped_total`), never blocking a request."""

    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    """Seconds before each delivery attempt (the first is counted from the event, each later one
    from the attempt before): Standard Webhooks' suggested schedule. Comma-separated in the
    environment. After the last attempt fails the delivery is marked failed."""
    webhook_timeout: float = Field(default=10.0, gt=0)
    """Seconds a receiver has to answer a delivery."""
    webhook_allowed_destinations: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts (`hooks.example.com`) and networks (`10.0.0.0/8`, `127.0.0.1/32`) webhooks may be
    delivered to, comma-separated; empty: any http(s) destination."""
    webhook_poll_interval: float = Field(default=1.0, gt=0)
    """Seconds between the delivery worker's looks at the outbox."""
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    """How long a process's claim on an endpoint's queue lasts without being renewed; after a
    crash, another process (or the restarted one) resumes delivering then."""

    _public_url_given: bool = PrivateAttr(default=False)

    api_key: SecretStr | None = None
    """A caller key (not needed by the server). The CLI's client commands (`call`, `connect`)
    read KEYGATE_API_KEY through `keygate.cli.client_config` instead, to start fast."""

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not value:
            return value  # unset (or set empty): it follows the served address
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("webhook_retry_schedule", "webhook_allowed_destinations", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: list[float]) -> list[float]:
        if not value or any(delay < 0 for delay in value):
            raise ValueError("must list one or more delays in seconds, none negative")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _public_url_follows_the_served_address(self) -> Settings:
        self._public_url_given = bool(self.public_url)
        if not self.public_url:
            self.public_url = self.served_url
        return self

    @property
    def public_url_given(self) -> bool:
        """Whether KEYGATE_PUBLIC_URL (or the caller) chose the public URL."""
        return self._public_url_given

    @property
    def served_url(self) -> str:
        """Where `keygate serve` listens, as a URL a local client can open."""
        return local_url(self.host, self.port)

    @field_validator("apps", mode="before")
    @classmethod
    def _normalise_app_names(cls, value: Any) -> Any:
        # Environment variable names cannot hold a hyphen: KEYGATE_APPS__CONSTANT_CONTACT__…
        if isinstance(value, dict):
            fixed = {str(k).lower().replace("_", "-"): v for k, v in value.items()}
            for name in fixed:
                if not _APP_NAME.match(name):
                    raise ValueError(f"invalid app name {name!r}")
            return fixed
        return value

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL: the configured one, else SQLite inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'keygate.db').resolve()}"

    @property
    def key_file(self) -> Path:
        """Where `keygate init` writes the generated encryption key."""
        return self.data_dir / "encryption.key"
