"""The `GET /v1/experiments` answer: the running experiment's variants (or `default`), their
online counts in this process, and the shadow's totals."""

from __future__ import annotations

from service.api.schemas import ExperimentsOut, ShadowOut, VariantOut
from service.feedback.loop import FeedbackLoop
from service.feedback.records import DEFAULT_VARIANT
from service.online.ports import ServableModel
from service.online.runtime import Runtime
from service.online.shadow import Shadow, ShadowTotals


def describe_experiments(
    rt: Runtime, model: ServableModel, loop: FeedbackLoop, shadows: Shadow
) -> ExperimentsOut:
    rows = loop.stats.summary()
    live = rt.experiments.live
    last_error = rt.experiments.last_error
    if live is None:
        online = [r for r in rows if r["variant"] == DEFAULT_VARIANT]
        variant = VariantOut(
            name=DEFAULT_VARIANT, weight=1.0, model_version=model.version, online=online
        )
        return ExperimentsOut(
            since=loop.stats.started_at, variants=[variant], last_error=last_error
        )
    variants = [
        VariantOut(
            name=v.name,
            weight=v.weight,
            model_version=live.served_by[v.name].version,
            online=[r for r in rows if r["variant"] == v.name],
        )
        for v in live.experiment.variants
    ]
    shadow_out = None
    if live.shadow is not None:
        name, shadow_model = live.shadow
        totals = shadows.totals.get(name, ShadowTotals()).as_dict()
        shadow_out = ShadowOut(name=name, model_version=shadow_model.version, **totals)
    return ExperimentsOut(
        since=loop.stats.started_at,
        variants=variants,
        name=live.experiment.name,
        shadow=shadow_out,
        last_error=last_error,
    )
