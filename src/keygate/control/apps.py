"""`/apps`: the provider catalog as this deployment serves it (read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from keygate.catalog.model import Category
from keygate.control.auth import CallerDep
from keygate.control.deps import AppsDep, PublicUrlDep, SessionTtlDep
from keygate.control.openapi import AppEnvelope, AppList, error_responses, success
from keygate.control.views import app_detail_view, app_view, matching_apps
from keygate.errors import UnknownAppError
from keygate.skills import Language, render_app_skill, render_general_skill

router = APIRouter(tags=["apps"])


class MarkdownResponse(PlainTextResponse):
    """A markdown text (Starlette adds `; charset=utf-8` to a text type)."""

    media_type = "text/markdown"


LangQuery = Annotated[Language, Query(description="The skill's language.")]


def _json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error entries, their bodies documented as JSON: FastAPI would document a `model`
    under the route's own media type (markdown), which Keygate's errors are not."""
    entries = error_responses(*statuses)
    for entry in entries.values():
        entry.pop("model")
        entry["content"] = {
            **entry.get("content", {}),
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
        }
    return entries


_SKILL: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The skill: SKILL.md of the Agent Skills format (YAML front matter, then "
        "markdown), written for this deployment.",
        "content": {"text/markdown": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/apps",
    summary="List the apps",
    response_model=None,
    responses={**success(AppList, "Every app of the catalog."), **error_responses(400, 401, 503)},
)
async def list_apps(
    apps: AppsDep,
    caller: CallerDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only apps whose name, display name or category contains this text "
            "(any case).",
        ),
    ] = None,
    category: Annotated[Category | None, Query(description="Only apps of this category.")] = None,
) -> dict[str, Any]:
    """Every app in the catalog, or those matching `q` and `category`, by name."""
    found = matching_apps(apps, q, None if category is None else category.value)
    return {"apps": [app_view(app) for app in found]}


@router.get(
    "/apps/skill",
    summary="The general agent skill: every app this deployment serves",
    response_class=MarkdownResponse,
    responses={**_SKILL, **_json_errors(400, 401, 503)},
)
async def general_skill(
    apps: AppsDep, public_url: PublicUrlDep, caller: CallerDep, lang: LangQuery = "en"
) -> MarkdownResponse:
    """The `keygate` skill, listing every app, in English or Chinese."""
    return MarkdownResponse(render_general_skill(apps, public_url, lang))


@router.get(
    "/apps/{app}/skill",
    summary="An app's agent skill",
    response_class=MarkdownResponse,
    responses={**_SKILL, **_json_errors(400, 401, 404, 503)},
)
async def app_skill(
    app: str,
    apps: AppsDep,
    public_url: PublicUrlDep,
    link_ttl: SessionTtlDep,
    caller: CallerDep,
    lang: LangQuery = "en",
) -> MarkdownResponse:
    """One app's skill (connections, endpoints, pagination, errors), in English or Chinese."""
    configured = apps.get(app)
    if configured is None:
        raise UnknownAppError(f"Unknown app {app!r}.")
    return MarkdownResponse(
        render_app_skill(configured, public_url, lang, link_ttl_seconds=link_ttl)
    )


@router.get(
    "/apps/{app}",
    summary="Show one app",
    response_model=None,
    responses={**success(AppEnvelope, "The app."), **error_responses(401, 404, 503)},
)
async def get_app(app: str, apps: AppsDep, caller: CallerDep) -> dict[str, Any]:
    """One app of the catalog."""
    configured = apps.get(app)
    if configured is None:
        raise UnknownAppError(f"Unknown app {app!r}.")
    return {"app": app_detail_view(configured)}
