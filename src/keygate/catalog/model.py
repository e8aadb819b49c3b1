"""The typed model every catalog file must satisfy; a bad file stops start-up, naming the field."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Method(StrEnum):
    """How a connection authenticates upstream."""

    OAUTH2 = "OAUTH2"
    API_KEY = "API_KEY"
    BASIC = "BASIC"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Injection(_Strict):
    """Where the credential goes: a header whose value is a template over credential fields."""

    header: str = "Authorization"
    template: str

    @field_validator("template")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if "{" not in value:
            raise ValueError("template must reference a credential field, e.g. {access_token}")
        return value


class VerifyRequest(_Strict):
    """A cheap authenticated call that proves a pasted secret works."""

    method: Literal["GET", "HEAD", "POST"] = "GET"
    path: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value


class OAuth2Method(_Strict):
    """An OAuth 2.0 authorization-code connection method."""

    type: Literal[Method.OAUTH2]
    authorize_url: HttpUrl
    token_url: HttpUrl
    revoke_url: HttpUrl | None = None
    device_authorization_url: HttpUrl | None = None
    pkce: Literal["required", "supported", "none"] = "supported"
    client_auth: Literal["basic", "post"] = "basic"
    scopes: list[str] = Field(default_factory=list)
    scope_separator: str = " "
    authorize_params: dict[str, str] = Field(default_factory=dict)
    inject: Injection = Injection(template="Bearer {access_token}")


class SecretField(_Strict):
    """One field of the form a person fills in for an API_KEY or BASIC connection."""

    name: str
    label: str
    pattern: str | None = None
    help: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class ApiKeyMethod(_Strict):
    """A pasted secret (API key, or user and password for BASIC) injected into a header."""

    type: Literal[Method.API_KEY, Method.BASIC]
    fields: list[SecretField] = Field(min_length=1)
    inject: Injection
    verify: VerifyRequest | None = None
    help: str | None = None


ConnectionMethod = Annotated[OAuth2Method | ApiKeyMethod, Field(discriminator="type")]


class AppSpec(_Strict):
    """One app of the catalog: its upstream, how to connect, and how to inject credentials."""

    name: str
    display_name: str
    docs_url: HttpUrl
    base_url: HttpUrl
    methods: list[ConnectionMethod] = Field(min_length=1)
    default_headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not APP_NAME.match(value):
            raise ValueError("lower-case letters, digits and '-' only")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_query(cls, value: HttpUrl) -> HttpUrl:
        if value.query or value.fragment:
            raise ValueError("base_url may not carry a query or fragment")
        return value

    @model_validator(mode="after")
    def _unique_methods(self) -> AppSpec:
        kinds = [m.type for m in self.methods]
        if len(kinds) != len(set(kinds)):
            raise ValueError("each connection method may appear once")
        return self

    def method(self, kind: Method) -> OAuth2Method | ApiKeyMethod | None:
        """The method of that kind, if the app supports it."""
        for candidate in self.methods:
            if candidate.type == kind:
                return candidate
        return None

    @property
    def method_names(self) -> list[str]:
        """The supported method names, the default first."""
        return [m.type.value for m in self.methods]
