"""Signing in with an API key (exchanged for a session cookie) and signing out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from keygate.control.deps import (
    CipherDep,
    DatabaseDep,
    PublicUrlDep,
    ReadsDep,
    UiSessionTtlDep,
)
from keygate.dashboard.guard import CheckedFormDep, CsrfRefused, ViewerDep, form_text, same_site
from keygate.dashboard.render import page, page_headers
from keygate.dashboard.session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    check_sign_in,
    mint_session,
    sign_in_nonce,
    sign_in_token,
)
from keygate.errors import InvalidApiKey
from keygate.store.sessions import SignOutRepository

log = logging.getLogger("keygate.dashboard")
router = APIRouter(include_in_schema=False)
_SIGN_IN_TTL = 3600


def redirect(url: str) -> RedirectResponse:
    """A 303 to another dashboard page (after a form, the browser GETs it)."""
    return RedirectResponse(url, status_code=303, headers=page_headers())


def _sign_in_page(
    request: Request, cipher: CipherDep, secure: bool, error: str | None = None, status: int = 200
) -> Response:
    nonce = request.cookies.get(SIGN_IN_COOKIE) or sign_in_nonce()
    response = page(
        request,
        "sign_in.html",
        None,
        {"sign_in_token": sign_in_token(cipher, nonce), "error": error},
        status=status,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=_SIGN_IN_TTL,
        path="/ui",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/ui")
async def home() -> Response:
    """The dashboard starts at the connections."""
    return redirect("/ui/connections")


@router.get("/ui/sign-in")
async def sign_in_form(request: Request, cipher: CipherDep, public_url: PublicUrlDep) -> Response:
    """The sign-in form."""
    return _sign_in_page(request, cipher, public_url.startswith("https://"))


@router.post("/ui/sign-in")
async def sign_in(
    request: Request,
    cipher: CipherDep,
    reads: ReadsDep,
    public_url: PublicUrlDep,
    ttl_seconds: UiSessionTtlDep,
) -> Response:
    """Check the API key; on success set the session cookie and go to the connections."""
    form = await request.form()
    if not same_site(request) or not check_sign_in(
        cipher, request.cookies.get(SIGN_IN_COOKIE), form_text(form, "csrf_token")
    ):
        raise CsrfRefused
    secure = public_url.startswith("https://")
    key = form_text(form, "api_key", limit=300)
    try:
        record = await reads.api_key(f"Bearer {key}")
    except InvalidApiKey:
        return _sign_in_page(
            request, cipher, secure, "That API key is not valid (or was revoked).", 401
        )
    log.info("dashboard sign-in with key %s", record.prefix)
    response = redirect("/ui/connections")
    response.set_cookie(
        SESSION_COOKIE,
        mint_session(cipher, record.id, record.workspace_id),
        max_age=ttl_seconds,
        path="/ui",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/ui")
    return response


@router.post("/ui/sign-out")
async def sign_out(
    viewer: ViewerDep, form: CheckedFormDep, database: DatabaseDep, ttl_seconds: UiSessionTtlDep
) -> Response:
    """End the session: refused from now on, even if its cookie was copied, and forgotten."""
    session = viewer.session
    expires = datetime.fromtimestamp(session.expires_at(ttl_seconds), UTC)
    await SignOutRepository(database).sign_out(session.nonce.hex(), expires)
    response = redirect("/ui/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response
