"""Admin routes of A/B experiments: start or change one (`PUT`), end it (`DELETE`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import require_admin_key
from service.api.deps import current_model, error_responses, feedback, runtime, shadow
from service.api.errors import ApiError
from service.api.schemas import ExperimentIn, ExperimentsOut
from service.api.variants import describe_experiments
from service.feedback.loop import FeedbackLoop
from service.online.experiment import InvalidExperiment, Variant, checked
from service.online.ports import ModelLoadError, ServableModel
from service.online.runtime import Runtime
from service.online.shadow import Shadow
from service.settings import reload_root
from service.validation import OutsideBundlesRoot, check_bundle_path

router = APIRouter(tags=["experiments"], dependencies=[Depends(require_admin_key)])


@router.put(
    "/v1/admin/experiment",
    response_model=ExperimentsOut,
    summary="Start an A/B experiment, or change the running one (weights, variants, shadow)",
    description="Every variant's bundle is loaded and its collection checked in this process "
    "first (409 `experiment_refused` if one fails; nothing changes); then the experiment is "
    "stored and every serving process follows it. Weights are relative (normalized); the "
    "rollout gate does not apply to experiments.",
    responses=error_responses(400, 401, 403, 409, 422, 503),
)
async def put_experiment(
    body: ExperimentIn,
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServableModel, Depends(current_model)],
    loop: Annotated[FeedbackLoop, Depends(feedback)],
    shadows: Annotated[Shadow, Depends(shadow)],
) -> ExperimentsOut:
    """A bundle outside the bundles root (`RECSYS_BUNDLES_ROOT`) is a 403 naming its field;
    variants the schema cannot rule out (names not unique, `default`, all weights 0) a 409."""
    root = reload_root(rt.settings)
    try:
        variants = [
            Variant(v.name, _bundle(v.bundle, root, f"variants[{n}].bundle"), v.weight)
            for n, v in enumerate(body.variants)
        ]
        shadow_variant = (
            Variant(body.shadow.name, _bundle(body.shadow.bundle, root, "shadow.bundle"))
            if body.shadow is not None
            else None
        )
    except OutsideBundlesRoot as exc:
        raise ApiError(403, str(exc), exc.field) from None
    try:
        experiment = checked(body.name, variants, shadow_variant)
    except InvalidExperiment as exc:
        raise ApiError(409, str(exc), exc.field, code="experiment_refused") from None
    try:
        await rt.experiments.start(experiment)
    except ModelLoadError as exc:
        raise ApiError(
            409, f"experiment not started: {exc}", "variants", code="experiment_refused"
        ) from None
    return describe_experiments(rt, model, loop, shadows)


@router.delete(
    "/v1/admin/experiment",
    response_model=ExperimentsOut,
    summary="End the running experiment: all traffic back to the served bundle (`default`)",
    responses=error_responses(401, 403, 503),
)
async def delete_experiment(
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServableModel, Depends(current_model)],
    loop: Annotated[FeedbackLoop, Depends(feedback)],
    shadows: Annotated[Shadow, Depends(shadow)],
) -> ExperimentsOut:
    await rt.experiments.stop()
    return describe_experiments(rt, model, loop, shadows)


def _bundle(text: str, root: Path | None, field: str) -> str:
    return str(check_bundle_path(text, root, field))
