"""The typed model every catalog file must satisfy; a bad file stops start-up, naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from keygate.catalog.templates import (
    SAFE_VALUE,
    check_names,
    check_url_template,
    literal_text,
    placeholders,
)

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Method(StrEnum):
    """How a connection authenticates upstream."""

    OAUTH2 = "OAUTH2"
    API_KEY = "API_KEY"
    BASIC = "BASIC"


class Category(StrEnum):
    """What an app is for: a short fixed vocabulary, so `GET /apps?category=` finds them all."""

    CRM = "crm"
    MARKETING = "marketing"
    EMAIL = "email"
    CALENDAR = "calendar"
    FILES = "files"
    SPREADSHEETS = "spreadsheets"
    MESSAGING = "messaging"
    DEVELOPER = "developer"
    PROJECT_MANAGEMENT = "project-management"
    SUPPORT = "support"
    ACCOUNTING = "accounting"
    COMMERCE = "commerce"
    PAYMENTS = "payments"
    AI = "ai"
    COMMUNICATIONS = "communications"
    PRODUCTIVITY = "productivity"
    SCHEDULING = "scheduling"
    SOCIAL = "social"


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

UrlTemplate = Annotated[str, AfterValidator(check_url_template)]
"""An http(s) URL that may name connection parameters and captured values: `{subdomain}`."""


class BasicCredentials(_Strict):
    """HTTP Basic (RFC 7617): the user-id and password, each a template over credential
    fields; Keygate joins them with ':' and base64-encodes the pair."""

    username: str
    password: str = ""

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in literal_text(value):
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
            if not (placeholders(self.basic.username) or placeholders(self.basic.password)):
                raise ValueError("basic must reference a credential field, e.g. {password}")
            return self
        if self.template is None:
            raise ValueError("template is required, e.g. 'Bearer {access_token}'")
        if not placeholders(self.template):
            raise ValueError("template must reference a credential field, e.g. {access_token}")
        if self.header is not None:
            if not _TOKEN.match(self.header):
                raise ValueError(f"header {self.header!r} is not a valid HTTP header name")
            lower = self.header.lower()
            if lower in _RESERVED_HEADERS or lower.startswith("keygate-"):
                raise ValueError(f"header {self.header!r} is one Keygate sets or drops itself")
            if any(c in literal_text(self.template) for c in "\r\n\0"):
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


def check_injections(
    entries: tuple[Injection, ...], fields: Iterable[str], values: Iterable[str] = ()
) -> None:
    """Every placeholder names one of `fields` (the secret's) or `values` (the connection's
    parameters and captured values), and no two entries set the same header or query parameter;
    ValueError naming the entry and field otherwise."""
    known = list(fields)
    others = list(values)
    if not entries:
        raise ValueError("inject needs at least one entry")
    targets: set[str] = set()
    for index, entry in enumerate(entries):
        for where, template in entry.templates():
            for name in placeholders(template):
                if name not in known and name not in others:
                    extra = (
                        f"; parameters and captured values: {', '.join(others)}" if others else ""
                    )
                    raise ValueError(
                        f"inject[{index}].{where}: placeholder {{{name}}} names no field of this "
                        f"method, parameter or captured value (its fields: {', '.join(known)}"
                        f"{extra})"
                    )
        header = entry.header_name
        target = f"header {header.lower()}" if header is not None else f"query {entry.query}"
        if target in targets:
            raise ValueError(f"inject[{index}]: {target} is injected twice")
        targets.add(target)


def _identifier(value: str) -> str:
    if not value.isidentifier():
        raise ValueError("a name is letters, digits and '_' (templates say {name})")
    return value


def _compiles(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from None
    return value


class ConnectionParam(_Strict):
    """A value a connection needs besides its secret (a shop, a subdomain, a region), given at
    `POST /connections` as `params` or asked on the connect page, and substituted into the
    app's URLs and headers as `{name}`.

    Its value must match `pattern` (whole) and be made of URL-safe characters only
    (`SAFE_VALUE`), so that it cannot change the shape of a URL it goes into.
    """

    name: str
    label: str
    pattern: str
    example: str
    default: str | None = None
    """The value a connection gets when `POST /connections` leaves the parameter out (and the
    connect page's pre-filled answer): Microsoft's `tenant` is `common`."""
    help: str | None = None

    _name = field_validator("name")(_identifier)
    _pattern = field_validator("pattern")(_compiles)

    @model_validator(mode="after")
    def _example_fits(self) -> ConnectionParam:
        for what in ("example", "default"):
            value = getattr(self, what)
            if value is None:
                continue
            if not re.fullmatch(self.pattern, value):
                raise ValueError(f"{what} {value!r} does not match pattern {self.pattern!r}")
            if not SAFE_VALUE.match(value):
                raise ValueError(
                    f"{what} {value!r}: a parameter is letters, digits and . _ ~ - only"
                )
        return self

    def problem(self, value: object) -> str | None:
        """Why `value` is not a valid value of this parameter (for the person), or None."""
        if not isinstance(value, str) or not value:
            return f"params.{self.name} must be a non-empty string, e.g. {self.example!r}"
        if not SAFE_VALUE.match(value) or not re.fullmatch(self.pattern, value):
            return (
                f"params.{self.name} ({self.label}) must match {self.pattern}, "
                f"e.g. {self.example!r}"
            )
        return None


_CAPTURE_PATH = re.compile(r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$")


class Capture(_Strict):
    """A value learnt while authorizing, substituted like a parameter (`{instance_url}`).

    `from` says where it comes from: the token response (`path` is a dotted path into its JSON,
    `team.id`), the callback's query (`path` is the parameter, `realmId`), or the method's one
    `capture_request` (a dotted path into its JSON answer, where a number indexes a list:
    `0.id`). A token response that carries it again on refresh updates it. The value must match
    `pattern`, since it decides where Keygate sends requests.
    """

    name: str
    source: Literal["token", "callback", "request"] = Field(alias="from")
    path: str
    pattern: str
    example: str

    _name = field_validator("name")(_identifier)
    _pattern = field_validator("pattern")(_compiles)

    @field_validator("path")
    @classmethod
    def _dotted_path(cls, value: str) -> str:
        if not _CAPTURE_PATH.match(value):
            raise ValueError(f"{value!r} is not a dotted path, e.g. team.id or 0.id")
        return value

    @model_validator(mode="after")
    def _example_fits(self) -> Capture:
        if not re.fullmatch(self.pattern, self.example):
            raise ValueError(f"example {self.example!r} does not match pattern {self.pattern!r}")
        if self.source == "callback" and "." in self.path:
            raise ValueError("a callback capture's path is one query parameter name")
        return self


class CaptureRequest(_Strict):
    """The one request made after the code exchange to learn `from: request` captures
    (Atlassian's accessible resources, Mailchimp's metadata). Its headers are templates over
    the token fields, parameters and the token and callback captures."""

    method: Literal["GET", "POST"] = "GET"
    url: UrlTemplate
    headers: dict[str, str] = Field(
        default_factory=lambda: {
            "Authorization": "Bearer {access_token}",
            "Accept": "application/json",
        }
    )


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
    """An OAuth 2.0 authorization-code connection method.

    Token requests: `token_body` form (RFC 6749) or json; client authentication `basic` or
    `post` (in the body); `token_params` added to every token request. Token answers: access
    tokens that `expires` (in `expires_in`, counted in `expires_in_unit`; `default_expires_in`
    when it is absent or 0, else no expiry) or never do; `refresh_tokens` issued or not, and
    single use (`refresh_token_rotates`: a refresh answer without a new one leaves none) or not.
    """

    type: Literal[Method.OAUTH2]
    authorize_url: UrlTemplate
    token_url: UrlTemplate
    revoke_url: UrlTemplate | None = None
    device_authorization_url: UrlTemplate | None = None
    base_url: UrlTemplate | None = None
    params: list[ConnectionParam] = Field(default_factory=list)
    pkce: Literal["required", "supported", "none"] = "supported"
    client_auth: Literal["basic", "post"] = "basic"
    token_body: Literal["form", "json"] = "form"  # noqa: S105 - a body format, not a secret
    token_params: dict[str, str] = Field(default_factory=dict)
    scopes: list[str] = Field(default_factory=list)
    scope_separator: str = " "
    authorize_params: dict[str, str] = Field(default_factory=dict)
    expires: bool = True
    expires_in_unit: Literal["seconds", "minutes", "milliseconds"] = "seconds"
    default_expires_in: int | None = Field(default=None, gt=0)
    refresh_tokens: bool = True
    refresh_token_rotates: bool = False
    capture: list[Capture] = Field(default_factory=list)
    capture_request: CaptureRequest | None = None
    inject: tuple[Injection, ...] = Field(
        default=(Injection(header="Authorization", template="Bearer {access_token}"),)
    )
    refresh_token_idle_days: int | None = Field(default=None, ge=1, le=3650)
    """Days the provider lets a refresh token go unused before it dies; Keygate refreshes a
    connection whose last refresh is older than nine tenths of that, traffic or not."""

    _entries = field_validator("inject", mode="before")(_as_entries)

    @model_validator(mode="after")
    def _coherent(self) -> OAuth2Method:
        needs_request = [c.name for c in self.capture if c.source == "request"]
        if needs_request and self.capture_request is None:
            raise ValueError(
                f"capture {needs_request[0]}: from: request needs the method's capture_request"
            )
        if self.capture_request is not None and not needs_request:
            raise ValueError("capture_request: no capture says from: request")
        if not self.expires and self.default_expires_in is not None:
            raise ValueError("default_expires_in: tokens that never expire have no lifetime")
        if self.refresh_token_rotates and not self.refresh_tokens:
            raise ValueError("refresh_token_rotates: this method issues no refresh tokens")
        return self

    def captured_names(self, *sources: str) -> list[str]:
        """The names of the captures from those sources (all when none is given)."""
        return [c.name for c in self.capture if not sources or c.source in sources]

    def check_templates(self, params: list[str]) -> None:
        """Every placeholder names what exists when the template is rendered; ValueError
        naming the field otherwise. `params` are the connection parameters (app and method)."""
        what = "parameter or captured value"
        callback = [*params, *self.captured_names("callback")]
        check_names("authorize_url", self.authorize_url, params, "parameter")
        for name, value in self.authorize_params.items():
            check_names(f"authorize_params.{name}", value, params, "parameter")
        if self.device_authorization_url is not None:
            check_names(
                "device_authorization_url", self.device_authorization_url, params, "parameter"
            )
        check_names("token_url", self.token_url, callback, what)
        for name, value in self.token_params.items():
            check_names(f"token_params.{name}", value, callback, what)
        if self.capture_request is not None:
            before = [*callback, *self.captured_names("token")]
            check_names("capture_request.url", self.capture_request.url, before, what)
            for name, value in self.capture_request.headers.items():
                check_names(
                    f"capture_request.headers.{name}", value, [*before, *TOKEN_FIELDS], what
                )
        every = [*params, *self.captured_names()]
        if self.revoke_url is not None:
            check_names("revoke_url", self.revoke_url, every, what)
        if self.base_url is not None:
            check_names("base_url", self.base_url, every, what)
        check_injections(self.inject, TOKEN_FIELDS, every)

    def value_names(self) -> list[str]:
        """Names a connection of this method may hold besides its secret, in declared order."""
        return [p.name for p in self.params] + self.captured_names()


class SecretField(_Strict):
    """One field of the form a person fills in for an API_KEY or BASIC connection."""

    name: str
    label: str
    pattern: str | None = None
    example: str | None = None
    """A value of the right shape (not a working secret): what the generic sandbox accepts."""
    help: str | None = None

    _name = field_validator("name")(_identifier)
    _pattern = field_validator("pattern")(_compiles)

    @model_validator(mode="after")
    def _example_fits(self) -> SecretField:
        if (
            self.example is not None
            and self.pattern
            and not re.fullmatch(self.pattern, self.example)
        ):
            raise ValueError(f"example does not match pattern {self.pattern!r}")
        return self


class ApiKeyMethod(_Strict):
    """A pasted secret (API key, or user and password for BASIC) injected as the catalog says.

    A BASIC method with exactly two fields and no `inject` sends them as HTTP Basic.
    """

    type: Literal[Method.API_KEY, Method.BASIC]
    fields: list[SecretField] = Field(min_length=1)
    inject: tuple[Injection, ...]
    verify: VerifyRequest | None = None
    help: str | None = None
    base_url: UrlTemplate | None = None
    params: list[ConnectionParam] = Field(default_factory=list)

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
    def _verify_headers(self) -> ApiKeyMethod:
        if self.verify is not None:
            injected = {e.header_name.lower() for e in self.inject if e.header_name is not None}
            for name in self.verify.headers:
                if name.lower() in injected:
                    raise ValueError(f"verify.headers: {name} is the injected header")
        return self

    def captured_names(self, *sources: str) -> list[str]:
        """A pasted secret captures nothing."""
        return []

    def check_templates(self, params: list[str]) -> None:
        """Every placeholder names a field or parameter; ValueError naming the field otherwise."""
        if self.base_url is not None:
            check_names("base_url", self.base_url, params, "parameter")
        if self.verify is not None:
            for name, value in self.verify.headers.items():
                check_names(f"verify.headers.{name}", value, params, "parameter")
        check_injections(self.inject, [f.name for f in self.fields], params)

    def value_names(self) -> list[str]:
        """Names a connection of this method may hold besides its secret."""
        return [p.name for p in self.params]


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
        in_path = set(placeholders(self.path))
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
    category: Category | None = None
    docs_url: HttpUrl
    base_url: UrlTemplate
    methods: list[ConnectionMethod] = Field(min_length=1)
    params: list[ConnectionParam] = Field(default_factory=list)
    default_headers: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination | None = None
    endpoints: list[Endpoint] = Field(default_factory=list)
    notes: list[Text] = Field(default_factory=list)
    """What an agent calling the app must know that the rest of the entry does not say (its
    skill shows them, e.g. Klaviyo's date-based `revision` header)."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not APP_NAME.match(value):
            raise ValueError("lower-case letters, digits and '-' only")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_query(cls, value: str) -> str:
        if "?" in value or "#" in value:
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
        for index, method in enumerate(self.methods):
            try:
                self._check_method_templates(method)
            except ValueError as exc:
                raise ValueError(f"methods.{index} ({method.type.value}): {exc}") from None
        actions = [e.name for e in self.endpoints]
        twice = sorted({a for a in actions if actions.count(a) > 1})
        if twice:
            raise ValueError(f"endpoints: {', '.join(twice)} named twice")
        if any(e.paginated for e in self.endpoints) and self.pagination is None:
            raise ValueError("endpoints: a paginated endpoint needs the app's pagination")
        return self

    def _check_method_templates(self, method: OAuth2Method | ApiKeyMethod) -> None:
        """One method's names are distinct, and every template it is rendered with (its own,
        and the app's base URL and default headers) names only what the method has."""
        params = [p.name for p in (*self.params, *method.params)]
        taken: list[str] = [*TOKEN_FIELDS, "refresh_token", "scope"]
        if isinstance(method, ApiKeyMethod):
            taken = [f.name for f in method.fields]
        for name in [*params, *method.captured_names()]:
            if name in taken:
                raise ValueError(f"{name} is declared twice (parameters, captures and fields)")
            taken.append(name)
        method.check_templates(params)
        every = [*params, *method.captured_names()]
        if method.base_url is None:
            check_names("base_url", self.base_url, every, "parameter or captured value")
        for name, value in self.default_headers.items():
            check_names(f"default_headers.{name}", value, every, "parameter or captured value")
            if any(c in literal_text(value) for c in "\r\n\0"):
                raise ValueError(f"default_headers.{name} may not contain line breaks or NUL")

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

    def params_for(self, method: OAuth2Method | ApiKeyMethod) -> list[ConnectionParam]:
        """The parameters a connection of that method needs: the app's, then the method's."""
        return [*self.params, *method.params]

    def connection_params(
        self, method: OAuth2Method | ApiKeyMethod, given: Mapping[str, object]
    ) -> dict[str, str]:
        """The parameters given for a new connection, each checked, plus the defaults of those
        left out (the rest are asked on the connect page); ValueError naming the first
        parameter that is unknown or does not fit."""
        declared = {p.name: p for p in self.params_for(method)}
        for name, value in given.items():
            param = declared.get(name)
            if param is None:
                known = ", ".join(declared) or "none"
                raise ValueError(
                    f"params.{name}: {self.name} ({method.type.value}) has no such parameter; "
                    f"its parameters: {known}"
                )
            problem = param.problem(value)
            if problem is not None:
                raise ValueError(problem)
        defaults = {p.name: p.default for p in declared.values() if p.default is not None}
        return {**defaults, **{name: str(value) for name, value in given.items()}}

    def base_url_for(self, method: OAuth2Method | ApiKeyMethod) -> str:
        """The base URL template of that method's connections."""
        return method.base_url or self.base_url


def catalog_json_schema() -> dict[str, Any]:
    """The JSON Schema of one catalog file, from `AppSpec` (under the files' own field names)."""
    schema = AppSpec.model_json_schema(by_alias=True, mode="validation")
    definitions = schema["$defs"]
    # What the before-validators accept and pydantic cannot see: one `inject` entry written as
    # a mapping, and a BASIC method of two fields that leaves `inject` out.
    for method in ("OAuth2Method", "ApiKeyMethod"):
        inject = definitions[method]["properties"]["inject"]
        entries = {"type": "array", "items": inject.pop("items")}
        inject.pop("type", None)
        inject["anyOf"] = [{"$ref": "#/$defs/Injection"}, entries]
    required = definitions["ApiKeyMethod"]["required"]
    required.remove("inject")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }
