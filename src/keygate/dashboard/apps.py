"""The apps page: the catalog as this deployment serves it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from keygate.catalog.loader import ConfiguredApp
from keygate.control.deps import AppsDep
from keygate.dashboard.guard import ViewerDep
from keygate.dashboard.render import page

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class AppRow:
    """An app with what a person setting up connections needs to know."""

    app: ConfiguredApp

    @property
    def oauth_state(self) -> str:
        """Whether OAuth connections can be made: no method, a client, or a client missing."""
        if self.app.oauth() is None:
            return "no OAuth method"
        return "client configured" if self.app.client_id else "no client configured"


@router.get("/ui/apps")
async def apps_page(request: Request, viewer: ViewerDep, apps: AppsDep) -> Response:
    """Every app, its methods and whether an OAuth client is configured."""
    rows = [AppRow(apps[name]) for name in sorted(apps)]
    return page(request, "apps.html", viewer, {"rows": rows}, section="apps")
