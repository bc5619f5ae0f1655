from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import require_admin_key, require_api_key
from service.api.deps import current_model, error_responses, runtime
from service.api.errors import ApiError
from service.api.schemas import ModelOut, ReloadRequest
from service.online.model import ModelLoadError, ServingModel
from service.online.runtime import Runtime

router = APIRouter(tags=["models"])


def _describe(rt: Runtime, model: ServingModel) -> ModelOut:
    manifest = model.bundle.manifest
    return ModelOut(
        version=model.version,
        collection=model.collection,
        ranker=model.ranker_name,
        dataset=manifest.dataset,
        path=str(model.bundle.path),
        loaded_at=model.loaded_at,
        indexed_items_at_load=model.indexed_items,
        catalog_items=len(model.items),
        metrics=manifest.metrics,
        last_reload_error=rt.last_reload_error,
    )


@router.get(
    "/v1/models",
    response_model=ModelOut,
    summary="The bundle being served",
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401, 503),
)
def get_model(
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServingModel, Depends(current_model)],
) -> ModelOut:
    return _describe(rt, model)


@router.post(
    "/v1/admin/reload",
    response_model=ModelOut,
    summary="Load, verify and warm another bundle, check its collection, then swap atomically",
    description="On failure the current model keeps serving and the error says why (409).",
    dependencies=[Depends(require_admin_key)],
    responses=error_responses(401, 403, 409, 422),
)
async def reload(body: ReloadRequest, rt: Annotated[Runtime, Depends(runtime)]) -> ModelOut:
    try:
        model = await rt.reload(body.bundle)
    except ModelLoadError as exc:
        raise ApiError(
            409,
            f"reload failed, still serving the previous model: {exc}",
            "bundle",
            code="reload_failed",
        ) from None
    return _describe(rt, model)
