"""Items similar to one item: its neighbours by item vector, with the filters and exclusions
of a recommendation request, ranked by cosine (no user, no ranker)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.index import VectorIndex
from service.online.domain import Exclusions
from service.online.ports import ServableModel
from service.online.sources.found import Found
from service.online.sources.item_to_item import neighbours


class NotIndexed(LookupError):
    """The item has no vector in the served collection (unknown, deleted or still queued)."""


def similar_items(
    index: VectorIndex,
    model: ServableModel,
    item_id: str,
    k: int,
    filters: Mapping[str, Sequence[Any]],
    exclude_item_ids: Sequence[str],
) -> Found:
    """Up to ``k`` items nearest to ``item_id``, best first, never the item itself."""
    if item_id not in index.vectors(model.version, [item_id]):
        raise NotIndexed(item_id)
    exclusions = Exclusions(tuple(dict.fromkeys(exclude_item_ids)))
    return neighbours(index, model, [item_id], k, filters, exclusions)
