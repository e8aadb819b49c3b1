"""Resolving the caller's workspace from its API key, for the control-plane routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from keygate.control.deps import ReadsDep
from keygate.control.openapi import API_KEY_SCHEME
from keygate.store.records import ApiKeyRecord


async def get_caller(
    request: Request,
    reads: ReadsDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(API_KEY_SCHEME)],
) -> ApiKeyRecord:
    """The caller's API key record; raises InvalidApiKey (401).

    `_declared` only puts the security scheme in the OpenAPI document: the raw header is
    checked here, so every malformed value gets the same 401 JSON answer.
    """
    address = request.scope.get("keygate.client", "")  # set by KeygateApp when limits are on
    return await reads.api_key(request.headers.get("authorization"), address)


CallerDep = Annotated[ApiKeyRecord, Depends(get_caller)]
