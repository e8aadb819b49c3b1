"""Operator endpoints: liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from keygate.control.auth import RuntimeDep
from keygate.errors import StoreUnavailable
from keygate.gateway.metrics import GatewayMetrics, render_store_metrics

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness")
async def readyz(runtime: RuntimeDep) -> Response:
    """The process can reach its database."""
    try:
        await runtime.db.ping()
    except StoreUnavailable as exc:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            status_code=503,
            headers=exc.headers,
        )
    return JSONResponse({"status": "ok", "database": runtime.db.dialect})


@router.get("/metrics", summary="Prometheus metrics of this process")
async def metrics(request: Request, runtime: RuntimeDep) -> PlainTextResponse:
    """Request counters and latency histograms, and the database's reachability."""
    collected: GatewayMetrics = request.app.state.metrics
    text = collected.render() + render_store_metrics(runtime.db.outage)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
