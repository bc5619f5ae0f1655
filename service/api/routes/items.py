from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from service.api.auth import require_api_key
from service.api.deps import current_model, error_responses, runtime
from service.api.errors import ApiError
from service.api.schemas import ID_PATTERN, ItemsAccepted, ItemsRequest, ItemStatusOut
from service.features import EncodingError
from service.online.model import ServingModel
from service.online.runtime import Runtime

router = APIRouter(tags=["items"], dependencies=[Depends(require_api_key)])
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]


def _check_rows(model: ServingModel, rows: list[dict[str, Any]]) -> list[str]:
    """Every row has a valid item key and encodes for the item tower and the ranker; returns
    the ids. A bad row is a 422 naming it, so the worker never meets an item it cannot index."""
    key = model.bundle.encoder.schema.item_key
    known = {f.name for f in model.bundle.encoder.schema.on("item")}
    ids = []
    for i, row in enumerate(rows):
        item_id = row.get(key)
        if not isinstance(item_id, str) or not re.fullmatch(ID_PATTERN, item_id):
            raise ApiError(
                422,
                f"items[{i}].{key}: required, a string matching {ID_PATTERN}",
                f"items[{i}].{key}",
            )
        unknown = sorted(set(row) - known)
        if unknown:
            raise ApiError(
                422,
                f"items[{i}].{unknown[0]}: not an item feature; known: {sorted(known)}",
                f"items[{i}].{unknown[0]}",
            )
        ids.append(item_id)
    features = [*model.bundle.features("item_tower"), *model.items.features]
    for i, row in enumerate(rows):
        try:
            model.bundle.encoder.encode_rows([row], features)
        except (EncodingError, TypeError, ValueError) as exc:
            name = str(exc).split(":", 1)[0]
            raise ApiError(422, f"items[{i}].{exc}", f"items[{i}].{name}") from None
    return ids


@router.put(
    "/v1/items",
    status_code=202,
    response_model=ItemsAccepted,
    summary="Add or replace items; indexed asynchronously (202 once durably queued)",
    responses=error_responses(401, 413, 422, 503),
)
def put_items(
    body: ItemsRequest,
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServingModel, Depends(current_model)],
) -> ItemsAccepted:
    ids = _check_rows(model, body.items)
    seq = rt.store.put_items(list(zip(ids, body.items, strict=True)))
    return ItemsAccepted(accepted=len(ids), seq=seq)


@router.delete(
    "/v1/items/{item_id}",
    status_code=202,
    response_model=ItemsAccepted,
    summary="Remove an item; removed from the index asynchronously",
    responses=error_responses(401, 422),
)
def delete_item(item_id: ItemId, rt: Annotated[Runtime, Depends(runtime)]) -> ItemsAccepted:
    return ItemsAccepted(accepted=1, seq=rt.store.delete_items([item_id]))


@router.get(
    "/v1/items/{item_id}",
    response_model=ItemStatusOut,
    summary="Whether an item is queued, indexed or deleted",
    responses=error_responses(401, 404, 422),
)
def item_status(item_id: ItemId, rt: Annotated[Runtime, Depends(runtime)]) -> ItemStatusOut:
    status = rt.store.item_status(item_id)
    if status is None:
        raise ApiError(404, f"unknown item {item_id!r}", "item_id")
    return ItemStatusOut(**vars(status))
