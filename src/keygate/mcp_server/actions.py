"""The catalog's endpoints as named actions (`app.action`): search, describe, and build a call.

Works on the endpoint objects as `GET /apps/{app}` serves them, so it reads the same for the
in-process endpoint and for `keygate mcp` talking to a remote Keygate.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_JSON_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean"}


class ActionInputError(ValueError):
    """The parameters given to an action do not fit its declaration."""


def action_name(app: str, endpoint: dict[str, Any]) -> str:
    """The action's full name, e.g. `klaviyo.get_profiles`."""
    return f"{app}.{endpoint['name']}"


def split_action(action: str) -> tuple[str, str]:
    """(app, endpoint name) of a full action name; raises ActionInputError."""
    app, dot, name = action.partition(".")
    if not dot or not app or not name:
        raise ActionInputError(
            f"An action is named app.action, e.g. klaviyo.get_profiles; got {action!r}. "
            "search_actions lists them."
        )
    return app, name


def params_schema(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of the action's `params` argument."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in endpoint.get("params", []):
        prop: dict[str, Any] = {"type": _JSON_TYPES.get(param.get("type", "string"), "string")}
        description = param.get("description") or {}
        words: list[str] = [str(description["en"])] if description.get("en") else []
        words.append(f"({param['in']} parameter)")
        prop["description"] = " ".join(words)
        if param.get("example") is not None:
            prop["examples"] = [param["example"]]
        properties[param["name"]] = prop
        if param.get("required"):
            required.append(param["name"])
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def describe(app: str, endpoint: dict[str, Any]) -> dict[str, Any]:
    """The action as the tools show it."""
    summary = endpoint.get("summary") or {}
    return {
        "action": action_name(app, endpoint),
        "app": app,
        "method": endpoint["method"],
        "path": endpoint["path"],
        "summary": summary.get("en", ""),
        "summary_zh": summary.get("zh", ""),
        "params_schema": params_schema(endpoint),
        "body_example": endpoint.get("body"),
        "paginated": bool(endpoint.get("paginated")),
    }


def score(query: str, app: str, endpoint: dict[str, Any]) -> int:
    """How many of the query's words the action's name, path or summaries contain (0: none)."""
    summary = endpoint.get("summary") or {}
    haystack = " ".join(
        [
            action_name(app, endpoint),
            endpoint["name"].replace("_", " "),
            endpoint["method"],
            endpoint["path"],
            summary.get("en", ""),
            summary.get("zh", ""),
        ]
    ).lower()
    words = [w for w in re.split(r"[\s,]+", query.lower()) if w]
    if not words:
        return 1
    # Substrings, so a Chinese query (no spaces) matches inside a Chinese summary.
    return sum(1 for w in words if w in haystack)


def _value(param: dict[str, Any], value: Any) -> str:
    """The parameter's value as it goes on the wire; raises ActionInputError on a wrong type."""
    kind = param.get("type", "string")
    name = param["name"]
    if kind == "integer":
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
        ):
            raise ActionInputError(f"Parameter {name!r} is an integer; got {value!r}.")
        return str(int(value))
    if kind == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower()
        raise ActionInputError(f"Parameter {name!r} is true or false; got {value!r}.")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ActionInputError(f"Parameter {name!r} is a string; got {value!r}.")
    return str(value)


def build_path(endpoint: dict[str, Any], params: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The native path with its path parameters substituted (each URL-encoded whole, so a value
    can never add a segment) and the query parameters given; raises ActionInputError."""
    declared = {p["name"]: p for p in endpoint.get("params", [])}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ActionInputError(
            f"Unknown parameter(s) {', '.join(unknown)}; this action takes: {known}."
        )
    missing = sorted(
        name
        for name, param in declared.items()
        if param.get("required") and params.get(name) is None
    )
    if missing:
        raise ActionInputError(f"Missing required parameter(s): {', '.join(missing)}.")
    values = {name: _value(declared[name], v) for name, v in params.items() if v is not None}
    for name, param in declared.items():
        if param["in"] == "path" and values.get(name) == "":
            raise ActionInputError(f"Path parameter {name!r} may not be empty.")

    def substitute(match: re.Match[str]) -> str:
        return quote(values[match.group(1)], safe="")

    path = _PLACEHOLDER.sub(substitute, endpoint["path"])
    query = {n: v for n, v in values.items() if declared[n]["in"] == "query"}
    return path, query
