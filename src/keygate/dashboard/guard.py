"""Who is looking: the signed-in person's workspace, and the checks before any change.

Every dashboard route takes `ViewerDep` (no session: off to the sign-in page) and every route
that changes something takes `CheckedFormDep`, which refuses a request from another site (by
its `Origin` and `Sec-Fetch-Site`) or without the session's CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData

from keygate.control.deps import CipherDep, DatabaseDep, KeysDep, UiSessionTtlDep
from keygate.dashboard.session import (
    SESSION_COOKIE,
    UiSession,
    check_csrf,
    csrf_token,
    parse_session,
)
from keygate.store.events import key_actor
from keygate.store.records import ApiKeyRecord
from keygate.store.sessions import SignOutRepository

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No valid session: the person is sent to the sign-in page."""


class CsrfRefused(Exception):
    """A state-changing request without the session's token, or from another site."""


class PageNotFound(Exception):
    """Nothing of the viewer's workspace at this URL (another workspace's ids included)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person: the API key they signed in with and its workspace."""

    session: UiSession
    key: ApiKeyRecord
    workspace_name: str
    csrf: str

    @property
    def actor(self) -> str:
        """Who the audit events of this person's changes name: the key signed in with."""
        return key_actor(self.key.prefix)

    @property
    def workspace_id(self) -> str:
        """The one workspace every page shows."""
        return self.key.workspace_id


async def get_viewer(
    request: Request,
    cipher: CipherDep,
    keys: KeysDep,
    ttl_seconds: UiSessionTtlDep,
    database: DatabaseDep,
) -> Viewer:
    """The viewer of a valid, unexpired, not signed-out session whose key is unrevoked; else
    SignInRequired."""
    session = parse_session(cipher, request.cookies.get(SESSION_COOKIE))
    if session is None or session.expired(ttl_seconds):
        raise SignInRequired
    if await SignOutRepository(database).signed_out(session.nonce.hex()):
        raise SignInRequired
    key = next(
        (
            k
            for k in await keys.list_keys(session.workspace_id)
            if k.id == session.key_id and k.revoked_at is None
        ),
        None,
    )
    if key is None:
        raise SignInRequired
    workspaces = await keys.list_workspaces()
    name = next((w.name for w in workspaces if w.id == key.workspace_id), key.workspace_id)
    return Viewer(session, key, name, csrf_token(cipher, session))


def same_site(request: Request) -> bool:
    """Whether the browser says the request comes from this site.

    Absent headers pass (only browsers send them; the CSRF token is checked regardless), and
    so does `Origin: null`, which Chromium sends for a form posted from a page whose
    referrer policy is `no-referrer`, as every Keygate page's is; `Sec-Fetch-Site` still
    tells a cross-site post from it.
    """
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def get_checked_form(request: Request, viewer: ViewerDep, cipher: CipherDep) -> FormData:
    """The submitted form of a same-site request carrying the session's CSRF token."""
    if not same_site(request):
        raise CsrfRefused
    form = await request.form()
    given = form.get(CSRF_FIELD)
    token = given if isinstance(given, str) else request.headers.get(CSRF_HEADER)
    if not check_csrf(cipher, viewer.session, token):
        raise CsrfRefused
    return form


CheckedFormDep = Annotated[FormData, Depends(get_checked_form)]


def form_text(form: FormData, name: str, limit: int = 2000) -> str:
    """A form field as stripped text ('' when missing), cut at `limit` characters."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""
