"""Resolving the caller's workspace from its API key, for the control-plane routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from keygate.runtime import Runtime
from keygate.store.reads import CachedReads
from keygate.store.records import ApiKeyRecord


def get_runtime(request: Request) -> Runtime:
    """The process runtime, set on the app at start-up."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_caller(request: Request) -> ApiKeyRecord:
    """The caller's API key record; raises InvalidApiKey (401)."""
    reads: CachedReads = request.app.state.reads
    return await reads.api_key(request.headers.get("authorization"))


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CallerDep = Annotated[ApiKeyRecord, Depends(get_caller)]
