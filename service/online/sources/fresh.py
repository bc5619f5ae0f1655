"""Fresh items: the catalog's most recently added ones, newest first.

The in-memory catalog (`service.model.item_table.ItemTable`) keeps items in the order they
were first added (it follows the store's change feed in sequence order), so the newest are
its last rows; an item updated later keeps its place, one deleted and added again is new.
Why not a scalar field in Milvus with a range filter: the collection's scalar fields are the
bundle's filterable features (an added-at field would change every collection's schema, so
existing collections would need re-indexing, and the batch job and the worker would need to
write it), and Milvus cannot order results by a scalar field, so the service would sort what
a range query returns anyway; the catalog already holds the order, with no round trip.

An item's score here is its newness, ``1 / (1 + r)`` for the ``r``-th newest item of the
catalog (1 for the newest): like every source's score it orders the source's own items, and
an explanation or the ranker's fallback always has a number to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.online.domain import Exclusions
from service.online.ports import ServableModel
from service.online.sources.found import Found, servable

SCAN_FACTOR = 20


def fresh(
    model: ServableModel,
    limit: int,
    filters: Mapping[str, Sequence[Any]],
    exclusions: Exclusions,
) -> Found:
    scan = SCAN_FACTOR * limit + len(exclusions)
    newest = model.items.newest(scan)
    ranked = ((item_id, 1.0 / (1 + r)) for r, item_id in enumerate(newest))
    return servable(model, ranked, limit, filters, exclusions, scan)
