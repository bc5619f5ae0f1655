from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import TypeAdapter, ValidationError

from service.api.auth import require_api_key
from service.api.contract import contract_of
from service.api.deps import current_model, error_responses, runtime
from service.api.errors import ApiError
from service.api.paths import item_id_in_path
from service.api.schemas import MAX_EXCLUSIONS, MAX_K, Filter, SimilarItemsResponse
from service.index import IndexUnavailable, InvalidFilter
from service.online.clock import off_loop
from service.online.ports import ServableModel
from service.online.runtime import Runtime
from service.online.similar import NotIndexed, similar_items
from service.validation import ID_PATTERN, InvalidInput

router = APIRouter(tags=["items"], dependencies=[Depends(require_api_key)])
ItemId = Annotated[str, Depends(item_id_in_path)]
FILTER = TypeAdapter(Filter)
# The one route whose query can outgrow the HTTP server's request line (64 KiB with uvicorn's
# parser; 1000 exclusions of long ids do): uvicorn refuses it before the app sees it.
REQUEST_LINE_TOO_LONG = {
    400: {
        "description": "The request line is longer than the HTTP server accepts (64 KiB with "
        "uvicorn): sent by the server itself, as plain text, before the service reads it.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=SimilarItemsResponse,
    summary="Items nearest to an item by item vector, with filters and exclusions",
    responses={**REQUEST_LINE_TOO_LONG, **error_responses(401, 404, 422, 503)},
)
async def similar(
    item_id: ItemId,
    rt: Annotated[Runtime, Depends(runtime)],
    model: Annotated[ServableModel, Depends(current_model)],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 20,
    exclude_item_ids: Annotated[
        list[Annotated[str, Query(pattern=ID_PATTERN)]], Query(max_length=MAX_EXCLUSIONS)
    ] = [],  # noqa: B006 (FastAPI copies query defaults)
    filter: Annotated[
        str | None, Query(description='JSON object, field -> accepted values: {"topic_id":["t3"]}')
    ] = None,
) -> SimilarItemsResponse:
    filters = _filters(filter)
    contract_of(model).check("Filter", filters, "filter")
    status = await anyio.to_thread.run_sync(rt.store.item_status, item_id)
    if status is not None and status.deleted:
        raise ApiError(404, f"item {item_id!r} is deleted", "item_id")
    deadline = rt.settings.search_deadline_ms
    try:
        found = await off_loop(
            lambda: similar_items(rt.index, model, item_id, k, filters, exclude_item_ids), deadline
        )
    except NotIndexed:
        raise ApiError(404, f"item {item_id!r} is not indexed", "item_id") from None
    except InvalidFilter as exc:
        raise InvalidInput(str(exc), "filter") from None
    except (IndexUnavailable, TimeoutError) as exc:
        raise ApiError(503, f"vector index unavailable: {exc or 'past its deadline'}") from None
    items = [{"item_id": i, "score": s} for i, s in zip(found.ids, found.scores, strict=True)]
    return SimilarItemsResponse(item_id=item_id, items=items, model_version=model.version)


def _filters(raw: str | None) -> dict[str, list[Any]]:
    if raw is None:
        return {}
    try:
        return FILTER.validate_python(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise InvalidInput(
            f"filter must be a JSON object of field -> values: {exc}", "filter"
        ) from None
