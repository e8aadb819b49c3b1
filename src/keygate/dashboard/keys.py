"""The API keys page: list, create (the key shown once) and revoke."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from keygate.control.deps import KeysDep
from keygate.dashboard.guard import CheckedFormDep, PageNotFound, ViewerDep, form_text
from keygate.dashboard.render import page
from keygate.dashboard.signin import redirect
from keygate.store.reads import is_uuid

log = logging.getLogger("keygate.dashboard")
router = APIRouter(include_in_schema=False)


@router.get("/ui/keys")
async def keys_page(request: Request, viewer: ViewerDep, keys: KeysDep) -> Response:
    """The workspace's keys, newest first (prefixes only: keys are stored as hashes)."""
    listed = list(reversed(await keys.list_keys(viewer.workspace_id)))
    context = {"keys": listed, "new_key": None, "new_record": None}
    return page(request, "keys.html", viewer, context, section="keys")


@router.post("/ui/keys")
async def create_key(
    request: Request, viewer: ViewerDep, form: CheckedFormDep, keys: KeysDep
) -> Response:
    """A new key, shown on this response only (never in a URL, never stored in the clear)."""
    name = form_text(form, "name", 100)
    key, record = await keys.create_key(viewer.workspace_id, name, actor=viewer.actor)
    log.info("API key %s created from the dashboard", record.prefix)
    listed = list(reversed(await keys.list_keys(viewer.workspace_id)))
    context = {"keys": listed, "new_key": key, "new_record": record}
    return page(request, "keys.html", viewer, context, status=201, section="keys")


@router.post("/ui/keys/{key_id}/revoke")
async def revoke_key(
    key_id: str, viewer: ViewerDep, form: CheckedFormDep, keys: KeysDep
) -> Response:
    """Revoke one of the workspace's keys (the one signed in with ends this session)."""
    record = next(
        (
            k
            for k in await keys.list_keys(viewer.workspace_id)
            if is_uuid(key_id) and k.id == key_id
        ),
        None,
    )
    if record is None:
        raise PageNotFound
    await keys.revoke_key(record.prefix, actor=viewer.actor)
    log.info("API key %s revoked from the dashboard", record.prefix)
    return redirect("/ui/keys?revoked=1")
