"""`/docs`: Swagger UI served by Keygate itself, so it works on a machine without internet.

The assets come from the `swagger-ui-bundle-v2` package (Swagger UI's own dist files,
Apache-2.0) and are served under `/docs/assets/`. The page's Content-Security-Policy allows
scripts, styles and fetches from this origin only, plus the one inline script that starts
Swagger UI, by its hash: nothing loads from anywhere else, not even a favicon.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from keygate.control.security_headers import content_security_policy
from keygate.errors import NotFoundError

ASSETS = "/docs/assets"
_DIST = Path(str(swagger_ui_path))
_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""Only what the page uses: the dist's demo initializer and its source maps are not served."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


@cache
def _page(title: str) -> tuple[bytes, str]:
    """The page's HTML and its policy, which names the inline scripts of this very HTML."""
    html = bytes(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=None,
            # No badge from Swagger's online validator: that would be a request off this host.
            swagger_ui_parameters={"validatorUrl": None},
        ).body
    )
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html.decode())
    ]
    policy = content_security_policy(
        scripts=["'self'", *hashes],
        styles=["'self'"],
        # Swagger UI's stylesheet draws its icons as data: SVG images.
        images=["'self'", "data:"],
        # The document, and the "Try it out" calls, go to this origin only.
        connect=["'self'"],
    )
    return html, policy


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI over `/openapi.json`."""
    html, policy = _page("Keygate")
    return HTMLResponse(
        html, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"}
    )


@router.get(f"{ASSETS}/{{name}}")
async def swagger_asset(name: str) -> FileResponse:
    """One of Swagger UI's files."""
    media_type = _FILES.get(name)
    if media_type is None:
        raise NotFoundError
    return FileResponse(
        _DIST / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )
