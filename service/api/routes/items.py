from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import require_api_key
from service.api.contract import contract_of
from service.api.deps import current_model, error_responses, runtime
from service.api.errors import ApiError
from service.api.paths import item_id_in_path
from service.api.schemas import ItemsAccepted, ItemsRequest, ItemStatusOut
from service.online.ports import ServableModel
from service.online.runtime import Runtime

router = APIRouter(tags=["items"], dependencies=[Depends(require_api_key)])
ItemId = Annotated[str, Depends(item_id_in_path)]


@router.put(
    "/v1/items",
    status_code=202,
    response_model=ItemsAccepted,
    summary="Add or replace items; indexed asynchronously (202 once durably queued)",
    responses=error_responses(400, 401, 413, 422, 503),
)
def put_items(
    body: ItemsRequest,
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServableModel, Depends(current_model)],
) -> ItemsAccepted:
    """Every row must be one the index will take (a 422 names the row and field otherwise),
    so the worker never meets an item it cannot index."""
    contract = contract_of(model)
    for i, item in enumerate(body.items):
        contract.check("ItemFeatures", item.features, f"items[{i}].features")
    items = [(item.item_id, item.features) for item in body.items]
    rows = model.check_items(items)
    seq = rt.store.put_items([(i, row) for (i, _), row in zip(items, rows, strict=True)])
    return ItemsAccepted(accepted=len(rows), seq=seq)


@router.delete(
    "/v1/items/{item_id}",
    status_code=202,
    response_model=ItemsAccepted,
    summary="Remove an item; removed from the index asynchronously",
    responses=error_responses(401, 404, 422, 503),
)
def delete_item(item_id: ItemId, rt: Annotated[Runtime, Depends(runtime)]) -> ItemsAccepted:
    """An id the catalog never held is a 404 (a typo should not queue a tombstone); deleting
    an item again is accepted, as before."""
    if rt.store.item_status(item_id) is None:
        raise ApiError(404, f"unknown item {item_id!r}", "item_id")
    return ItemsAccepted(accepted=1, seq=rt.store.delete_items([item_id]))


@router.get(
    "/v1/items/{item_id}",
    response_model=ItemStatusOut,
    summary="Whether an item is queued, indexed or deleted",
    responses=error_responses(401, 404, 422, 503),
)
def item_status(item_id: ItemId, rt: Annotated[Runtime, Depends(runtime)]) -> ItemStatusOut:
    status = rt.store.item_status(item_id)
    if status is None:
        raise ApiError(404, f"unknown item {item_id!r}", "item_id")
    return ItemStatusOut(**vars(status))
