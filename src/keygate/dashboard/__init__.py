"""The dashboard at `/ui`: server-rendered pages for people (see the README's "Dashboard").

`install` adds its routes, its assets and the answers to its three refusals (no session,
a failed CSRF check, something not in the viewer's workspace) to the control app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from keygate.dashboard import apps, connections, keys, record, signin, webhooks
from keygate.dashboard.guard import CsrfRefused, PageNotFound, SignInRequired
from keygate.dashboard.render import page, page_headers
from keygate.dashboard.session import SESSION_COOKIE

_STATIC = Path(__file__).parent / "static"
_ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
}


async def _asset(name: str) -> Response:
    """One of the dashboard's own files (nothing is loaded from anywhere else)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise PageNotFound
    return FileResponse(
        _STATIC / name, media_type=media_type, headers={"Cache-Control": "max-age=3600"}
    )


async def _sign_in_required(request: Request, _: Exception) -> Response:
    headers = page_headers()
    if request.headers.get("hx-request"):
        # htmx follows HX-Redirect with a whole-page navigation.
        response = Response(status_code=401, headers={**headers, "HX-Redirect": "/ui/sign-in"})
    else:
        response = Response(status_code=303, headers={**headers, "Location": "/ui/sign-in"})
    if SESSION_COOKIE in request.cookies:
        response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


async def _csrf_refused(request: Request, _: Exception) -> Response:
    context = {
        "heading": "This request was refused",
        "message": "It did not come from a Keygate page (its security token is missing or "
        "wrong). Go back, reload the page and try again.",
    }
    return page(request, "message.html", None, context, status=403)


async def _not_found(request: Request, _: Exception) -> Response:
    context = {"heading": "Not found", "message": "There is nothing here in your workspace."}
    return page(request, "message.html", None, context, status=404)


def install(api: FastAPI) -> None:
    """Add the dashboard to the control app."""
    api.add_api_route("/ui/assets/{name}", _asset, methods=["GET"], include_in_schema=False)
    for module in (signin, connections, keys, apps, record, webhooks):
        api.include_router(module.router)
    api.add_exception_handler(SignInRequired, _sign_in_required)
    api.add_exception_handler(CsrfRefused, _csrf_refused)
    api.add_exception_handler(PageNotFound, _not_found)
