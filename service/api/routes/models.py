from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import require_admin_key, require_api_key
from service.api.deps import current_model, error_responses, feedback, runtime, shadow
from service.api.errors import ApiError
from service.api.schemas import (
    ExperimentsOut,
    GateOut,
    ModelOut,
    ReloadOut,
    ReloadRequest,
)
from service.api.variants import describe_experiments
from service.feedback.loop import FeedbackLoop
from service.online.gate import RolloutRefused
from service.online.ports import ModelLoadError, ServableModel
from service.online.runtime import Runtime
from service.online.shadow import Shadow
from service.settings import reload_root
from service.validation import OutsideBundlesRoot, check_bundle_path

router = APIRouter(tags=["models"])


def _shown_path(path: str, root: Path | None) -> str:
    """The bundle folder as a reload names it: relative to the bundles root, else its name
    alone; never an absolute path of the host."""
    folder = Path(path)
    if root is not None and folder.is_relative_to(root):
        return folder.relative_to(root).as_posix()
    return folder.name


def _describe(rt: Runtime, model: ServableModel, loop: FeedbackLoop) -> ModelOut:
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
        online=loop.stats.summary(info.version),
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
    loop: Annotated[FeedbackLoop, Depends(feedback)],
) -> ModelOut:
    return _describe(rt, model, loop)


@router.get(
    "/v1/experiments",
    response_model=ExperimentsOut,
    summary="The variants being served, with impressions, positives and CTR since start",
    description="Without an experiment, one variant (`default`, all traffic); during one "
    "(`PUT /v1/admin/experiment`), its variants with their weights, and its shadow's latency "
    "and overlap@k. `online` rows cover what this process served since it started.",
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401, 503),
)
def get_experiments(
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServableModel, Depends(current_model)],
    loop: Annotated[FeedbackLoop, Depends(feedback)],
    shadows: Annotated[Shadow, Depends(shadow)],
) -> ExperimentsOut:
    return describe_experiments(rt, model, loop, shadows)


@router.post(
    "/v1/admin/reload",
    response_model=ReloadOut,
    summary="Load, verify and warm another bundle, check its collection and the rollout gate, "
    "then swap atomically",
    description="On failure, or when the rollout gate refuses a worse bundle "
    "(`rollout_refused`, both bundles' figures in the message), the current model keeps "
    "serving and the error says why (409).",
    dependencies=[Depends(require_admin_key)],
    responses=error_responses(400, 401, 403, 409, 422),
)
async def reload(
    body: ReloadRequest,
    rt: Annotated[Runtime, Depends(runtime)],
    loop: Annotated[FeedbackLoop, Depends(feedback)],
) -> ReloadOut:
    """Only a folder inside the bundles root (`RECSYS_BUNDLES_ROOT`) is loaded: a path that
    breaks the path rule is a 422, one that points elsewhere (or any, with reloads off) a 403."""
    try:
        path = check_bundle_path(body.bundle, reload_root(rt.settings))
    except OutsideBundlesRoot as exc:
        raise ApiError(403, str(exc), exc.field) from None
    try:
        model, decision = await rt.reload(path, force=body.force)
    except ModelLoadError as exc:
        raise ApiError(
            409,
            f"reload failed, still serving the previous model: {exc}",
            "bundle",
            code="reload_failed",
        ) from None
    except RolloutRefused as exc:
        raise ApiError(
            409, f"{exc}; still serving the previous model", "bundle", code="rollout_refused"
        ) from None
    described = _describe(rt, model, loop).model_dump()
    return ReloadOut(**described, gate=GateOut(**asdict(decision)))
