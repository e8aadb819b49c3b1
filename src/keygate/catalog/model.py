"""The typed model every catalog file must satisfy; a bad file stops start-up, naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from string import Formatter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Method(StrEnum):
    """How a connection authenticates upstream."""

    OAUTH2 = "OAUTH2"
    API_KEY = "API_KEY"
    BASIC = "BASIC"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Names an injection may not set: Keygate's own, framing and hop-by-hop headers (RFC 9110
# §7.6.1), which the gateway reads or drops itself.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "maton-connection",
        "x-request-id",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP field name (RFC 9110 §5.1)
_FORMATTER = Formatter()


class BasicCredentials(_Strict):
    """HTTP Basic (RFC 7617): the user-id and password, each a template over credential
    fields; Keygate joins them with ':' and base64-encodes the pair."""

    username: str
    password: str = ""

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in _literal_text(value):
            raise ValueError("a Basic user-id may not contain ':' (RFC 7617 §2)")
        return value


class Injection(_Strict):
    """One place the credential goes: a header (any name; its value a template over credential
    fields), a query parameter (a template), or HTTP Basic built from two templates.

    An entry that names none of `header`, `query` and `basic` is a header: `Authorization`.
    """

    header: str | None = None
    query: str | None = None
    basic: BasicCredentials | None = None
    template: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _authorization_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and not {"header", "query", "basic"} & data.keys():
            return {**data, "header": "Authorization"}
        return data

    @model_validator(mode="after")
    def _one_target(self) -> Injection:
        targets = [name for name in ("header", "query", "basic") if getattr(self, name) is not None]
        if len(targets) != 1:
            raise ValueError(
                f"give one of header, query or basic per entry, not {' and '.join(targets)} "
                "(a list of entries injects several)"
            )
        if self.basic is not None:
            if self.template is not None:
                raise ValueError("basic takes username and password templates, not template")
            if not (_placeholders(self.basic.username) or _placeholders(self.basic.password)):
                raise ValueError("basic must reference a credential field, e.g. {password}")
            return self
        if self.template is None:
            raise ValueError("template is required, e.g. 'Bearer {access_token}'")
        if not _placeholders(self.template):
            raise ValueError("template must reference a credential field, e.g. {access_token}")
        if self.header is not None:
            if not _TOKEN.match(self.header):
                raise ValueError(f"header {self.header!r} is not a valid HTTP header name")
            lower = self.header.lower()
            if lower in _RESERVED_HEADERS or lower.startswith("keygate-"):
                raise ValueError(f"header {self.header!r} is one Keygate sets or drops itself")
            if any(c in _literal_text(self.template) for c in "\r\n\0"):
                raise ValueError("template may not contain line breaks or NUL")
        elif not self.query:
            raise ValueError("query must name the parameter, e.g. api_key")
        return self

    @property
    def header_name(self) -> str | None:
        """The header this entry sets (Basic sets Authorization), or None for a query entry."""
        return "Authorization" if self.basic is not None else self.header

    def templates(self) -> list[tuple[str, str]]:
        """(where, template) for every template of this entry, `where` naming the field."""
        if self.basic is not None:
            basic = self.basic
            return [("basic.username", basic.username), ("basic.password", basic.password)]
        return [("template", self.template or "")]


def _placeholders(template: str) -> list[str]:
    """The field names a template references; ValueError if it is not a plain `{field}` one."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(
                f"template {template!r}: placeholders are plain field names, e.g. {{api_key}}"
            )
        names.append(name)
    return names


def _literal_text(template: str) -> str:
    """The text of a template outside its placeholders (malformed templates: all of it)."""
    try:
        return "".join(literal for literal, *_ in _FORMATTER.parse(template))
    except ValueError:
        return template


def check_injections(entries: tuple[Injection, ...], fields: Iterable[str]) -> None:
    """Every placeholder names one of `fields`, and no two entries set the same header or
    query parameter; ValueError naming the entry and field otherwise."""
    known = list(fields)
    if not entries:
        raise ValueError("inject needs at least one entry")
    targets: set[str] = set()
    for index, entry in enumerate(entries):
        for where, template in entry.templates():
            for name in _placeholders(template):
                if name not in known:
                    raise ValueError(
                        f"inject[{index}].{where}: placeholder {{{name}}} names no field of this "
                        f"method (its fields: {', '.join(known)})"
                    )
        header = entry.header_name
        target = f"header {header.lower()}" if header is not None else f"query {entry.query}"
        if target in targets:
            raise ValueError(f"inject[{index}]: {target} is injected twice")
        targets.add(target)


def _as_entries(value: Any) -> Any:
    """One entry may be written as a mapping instead of a list of one."""
    return [value] if isinstance(value, dict) else value


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


TOKEN_FIELDS = ("access_token", "token_type")
"""What an OAUTH2 injection template may reference: the stored token fields every token set has
(a token set without `token_type` renders it as `Bearer`)."""


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
    inject: tuple[Injection, ...] = Field(
        default=(Injection(header="Authorization", template="Bearer {access_token}"),)
    )
    refresh_token_idle_days: int | None = Field(default=None, ge=1, le=3650)
    """Days the provider lets a refresh token go unused before it dies; Keygate refreshes a
    connection whose last refresh is older than nine tenths of that, traffic or not."""

    _entries = field_validator("inject", mode="before")(_as_entries)

    @model_validator(mode="after")
    def _known_placeholders(self) -> OAuth2Method:
        check_injections(self.inject, TOKEN_FIELDS)
        return self


class SecretField(_Strict):
    """One field of the form a person fills in for an API_KEY or BASIC connection."""

    name: str
    label: str
    pattern: str | None = None
    help: str | None = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError("a field name is letters, digits and '_' (templates say {name})")
        return value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class ApiKeyMethod(_Strict):
    """A pasted secret (API key, or user and password for BASIC) injected as the catalog says.

    A BASIC method with exactly two fields and no `inject` sends them as HTTP Basic.
    """

    type: Literal[Method.API_KEY, Method.BASIC]
    fields: list[SecretField] = Field(min_length=1)
    inject: tuple[Injection, ...]
    verify: VerifyRequest | None = None
    help: str | None = None

    _entries = field_validator("inject", mode="before")(_as_entries)

    @model_validator(mode="before")
    @classmethod
    def _basic_by_default(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "inject" in data or data.get("type") != Method.BASIC:
            return data
        fields = data.get("fields")
        if (
            isinstance(fields, list)
            and len(fields) == 2
            and all(isinstance(f, dict) for f in fields)
        ):
            names = [f.get("name") for f in fields]
            basic = {"username": f"{{{names[0]}}}", "password": f"{{{names[1]}}}"}
            return {**data, "inject": [{"basic": basic}]}
        return data

    @model_validator(mode="after")
    def _known_placeholders(self) -> ApiKeyMethod:
        check_injections(self.inject, [f.name for f in self.fields])
        if self.verify is not None:
            injected = {e.header_name.lower() for e in self.inject if e.header_name is not None}
            for name in self.verify.headers:
                if name.lower() in injected:
                    raise ValueError(f"verify.headers: {name} is the injected header")
        return self


ConnectionMethod = Annotated[OAuth2Method | ApiKeyMethod, Field(discriminator="type")]

_DOTTED = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*(\.[A-Za-z_$][A-Za-z0-9_$-]*)*$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _dotted(value: str | None) -> str | None:
    if value is not None and not _DOTTED.match(value):
        raise ValueError(f"{value!r} is not a dotted path into a JSON body, e.g. links.next")
    return value


class Pagination(_Strict):
    """How the app's list responses point at their next page.

    `next` is the dotted path in a JSON response body to the next page's link (absent or null
    on the last page); `link` says whether that link is an absolute URL (Klaviyo's JSON:API
    `links.next`) or a path relative to the root of `base_url` (Constant Contact's
    `_links.next.href`, `/v3/…?cursor=…`). `items` is the dotted path to the page's items when
    every list endpoint shares it (an endpoint may name its own).
    """

    next: str
    link: Literal["absolute", "relative"]
    items: str | None = None

    _paths = field_validator("next", "items")(_dotted)


class Text(_Strict):
    """A short text in English and Chinese (skills and tools are served in both)."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class EndpointParam(_Strict):
    """One path or query parameter of an endpoint."""

    name: str = Field(min_length=1)
    location: Literal["path", "query"] = Field(alias="in")
    type: Literal["string", "integer", "boolean"] = "string"
    required: bool = False
    description: Text | None = None
    example: str | int | bool | None = None

    @model_validator(mode="after")
    def _path_params_required(self) -> EndpointParam:
        if self.location == "path" and not self.required:
            raise ValueError(f"path parameter {self.name!r} must be required")
        return self


class Endpoint(_Strict):
    """One endpoint of the app's native API, named as an action agents can search and run."""

    name: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    summary: Text
    params: list[EndpointParam] = Field(default_factory=list)
    body: dict[str, Any] | list[Any] | None = None
    paginated: bool = False
    items: str | None = None

    _items = field_validator("items")(_dotted)

    @field_validator("name")
    @classmethod
    def _action_name(cls, value: str) -> str:
        if not _ACTION.match(value):
            raise ValueError("an endpoint name is lower-case snake_case, e.g. get_profiles")
        return value

    @field_validator("path")
    @classmethod
    def _native_path(cls, value: str) -> str:
        if not value.startswith("/") or "?" in value or "#" in value:
            raise ValueError("a path starts with '/' and carries no query (declare params)")
        return value

    @model_validator(mode="after")
    def _path_params_declared(self) -> Endpoint:
        in_path = set(_placeholders(self.path))
        declared = {p.name for p in self.params if p.location == "path"}
        if in_path != declared:
            missing = sorted(in_path - declared) or sorted(declared - in_path)
            raise ValueError(
                f"path {self.path!r}: path parameters {', '.join(missing)} must appear both in "
                "the path as {name} and in params with in: path"
            )
        names = [(p.location, p.name) for p in self.params]
        if len(names) != len(set(names)):
            raise ValueError("a parameter is declared twice")
        if self.body is not None and self.method in ("GET", "DELETE"):
            raise ValueError(f"a {self.method} endpoint takes no example body")
        return self


class AppSpec(_Strict):
    """One app of the catalog: its upstream, how to connect, and how to inject credentials."""

    name: str
    display_name: str
    docs_url: HttpUrl
    base_url: HttpUrl
    methods: list[ConnectionMethod] = Field(min_length=1)
    default_headers: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination | None = None
    endpoints: list[Endpoint] = Field(default_factory=list)

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
        # A default header of an injected name would stand beside the secret.
        defaults = {name.lower() for name in self.default_headers}
        for method in self.methods:
            for entry in method.inject:
                if entry.header_name is not None and entry.header_name.lower() in defaults:
                    raise ValueError(
                        f"default_headers: {entry.header_name} is injected by {method.type.value}"
                    )
        actions = [e.name for e in self.endpoints]
        twice = sorted({a for a in actions if actions.count(a) > 1})
        if twice:
            raise ValueError(f"endpoints: {', '.join(twice)} named twice")
        if any(e.paginated for e in self.endpoints) and self.pagination is None:
            raise ValueError("endpoints: a paginated endpoint needs the app's pagination")
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
