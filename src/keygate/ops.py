"""Operator endpoints: liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from keygate import metrics as server_metrics
from keygate.control.deps import DatabaseDep, MetricsDep
from keygate.errors import StoreUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


_READY = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "database": {"type": "string"}},
    "required": ["status", "database"],
}


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=None,
    responses={
        200: {
            "description": "The database answers; `database` names its dialect.",
            "content": {"application/json": {"schema": _READY}},
        },
        503: {
            "description": "The database does not answer.",
            "content": {"application/json": {"schema": _READY}},
        },
    },
)
async def readyz(database: DatabaseDep) -> Response:
    """The process can reach its database."""
    try:
        await database.ping()
    except StoreUnavailable as exc:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            status_code=503,
            headers=exc.headers,
        )
    return JSONResponse({"status": "ok", "database": database.dialect})


@router.get(
    "/metrics",
    summary="Prometheus metrics of this server (every worker process)",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "The Prometheus text exposition format, version 0.0.4.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(collected: MetricsDep) -> Response:
    """Requests, latencies, refreshes, refusals and the database's reachability, summed over
    the server's worker processes."""
    return Response(collected.render(), media_type=server_metrics.CONTENT_TYPE)
