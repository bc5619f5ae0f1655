from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import runtime
from service.index import VectorIndexError
from service.online.runtime import Runtime
from service.redact import public
from service.state import StoreError

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="The process is up")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready: model loaded and warmed, its collection and the store reachable",
    responses={503: {"description": "not ready, with the failing checks"}},
)
async def readyz(rt: Annotated[Runtime, Depends(runtime)]) -> JSONResponse:
    checks: dict[str, str] = {}
    model = rt.model
    checks["model"] = model.version if model else "not loaded"
    if model is not None and not model.collection_ready:
        checks["index"] = f"unavailable: {model.collection} not open yet"
    elif model is not None:
        try:
            with anyio.fail_after(rt.settings.milvus_timeout_s + 1):
                count = await anyio.to_thread.run_sync(
                    rt.index.count, model.version, abandon_on_cancel=True
                )
            checks["index"] = f"ok ({count} items)"
        except (VectorIndexError, TimeoutError) as exc:
            checks["index"] = public(f"unavailable: {exc or 'timeout'}")
    try:
        depth = await anyio.to_thread.run_sync(rt.store.pending_count)
        checks["store"] = f"ok ({depth} queued)"
    except StoreError as exc:
        checks["store"] = public(f"unavailable: {exc}")
    ready = model is not None and all(v.startswith("ok") for k, v in checks.items() if k != "model")
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
