"""`/apps`: the provider catalog as this deployment serves it (read-only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from keygate.control.auth import CallerDep
from keygate.control.deps import AppsDep
from keygate.control.openapi import AppEnvelope, AppList, error_responses, success
from keygate.control.views import app_detail_view, app_view
from keygate.errors import UnknownAppError

router = APIRouter(tags=["apps"])


@router.get(
    "/apps",
    summary="List the apps",
    response_model=None,
    responses={**success(AppList, "Every app of the catalog."), **error_responses(401, 503)},
)
async def list_apps(apps: AppsDep, caller: CallerDep) -> dict[str, Any]:
    """Every app in the catalog."""
    return {"apps": [app_view(apps[name]) for name in sorted(apps)]}


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
