from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import require_admin_key, require_api_key
from service.api.deps import current_model, error_responses, runtime
from service.api.errors import ApiError
from service.api.schemas import ModelOut, ReloadRequest
from service.online.ports import ModelLoadError, ServableModel
from service.online.runtime import Runtime
from service.settings import reload_root
from service.validation import check_bundle_path

router = APIRouter(tags=["models"])


def _shown_path(path: str, root: Path | None) -> str:
    """The bundle folder as a reload names it: relative to the bundles root, else its name
    alone; never an absolute path of the host."""
    folder = Path(path)
    if root is not None and folder.is_relative_to(root):
        return folder.relative_to(root).as_posix()
    return folder.name


def _describe(rt: Runtime, model: ServableModel) -> ModelOut:
    info = model.info
    return ModelOut(
        version=info.version,
        collection=info.collection,
        ranker=info.ranker,
        dataset=info.dataset,
        path=_shown_path(info.path, reload_root(rt.settings)),
        loaded_at=info.loaded_at,
        indexed_items_at_load=info.indexed_items,
        catalog_items=len(model.items),
        metrics=dict(info.metrics),
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
    model: Annotated[ServableModel, Depends(current_model)],
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
    """Only a folder inside the bundles root (`RECSYS_BUNDLES_ROOT`) is loaded: any other path,
    or one with control characters, is a 422."""
    path = check_bundle_path(body.bundle, reload_root(rt.settings))
    try:
        model = await rt.reload(path)
    except ModelLoadError as exc:
        raise ApiError(
            409,
            f"reload failed, still serving the previous model: {exc}",
            "bundle",
            code="reload_failed",
        ) from None
    return _describe(rt, model)
