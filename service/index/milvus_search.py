"""Search replies decoded as columns, not as one pymilvus `Hit` per result.

pymilvus 2.6 turns every hit of a reply into a dict-backed `Hit` inside `SearchResult`; with
N = 200 candidates per request that decoding held the GIL for about a quarter of the API
process's time under load (py-spy --gil, `recsys bench`). Our searches ask for ids and scores
only, so the reply's id and score columns are read as they are. pymilvus still builds and
sends the request (parameters, consistency, retries, status); only `_execute_search`, the step
from the gRPC reply to a result, is replaced on this client's handler. pymilvus is pinned to
2.6.x (pyproject.toml); where its handler lacks the step, the client is left as it is and
searches decode through pymilvus (`columns` reads either).
"""

from __future__ import annotations

import logging
from typing import Any

from pymilvus import MilvusClient
from pymilvus.client.call_context import _api_level_md
from pymilvus.client.utils import check_status
from pymilvus.exceptions import MilvusException

from service.index import milvus_keys
from service.index.port import HitColumns

log = logging.getLogger(__name__)


def decode_columns(client: MilvusClient) -> bool:
    """Make ``client``'s searches return one `HitColumns` per query; False if this pymilvus
    has no step to replace (searches then decode through pymilvus)."""
    handler = client._get_connection()
    if not (hasattr(handler, "_execute_search") and hasattr(handler, "_stub")):
        log.warning("pymilvus %s: search replies decode per hit (slower)", type(handler))
        return False

    def execute_search(request: Any, timeout: float | None = None, **kwargs: Any) -> list:
        if kwargs.get("_async"):
            raise MilvusException(message="asynchronous search is not used here")
        metadata = _api_level_md(kwargs.get("context"))
        response = handler._stub.Search(request, timeout=timeout, metadata=metadata)
        if response is None:
            raise MilvusException(message="Received None response from server during search")
        check_status(response.status)
        return split(response.results)

    handler._execute_search = execute_search
    return True


def split(results: Any) -> list[HitColumns]:
    """The reply's flat id and score columns cut per query (``topks`` gives each one's count)."""
    if results.ids.HasField("int_id"):
        ids = [str(i) for i in results.ids.int_id.data]
    else:
        ids = milvus_keys.item_ids(results.ids.str_id.data)
    scores = list(results.scores)
    out, start = [], 0
    for topk in results.topks:
        end = start + topk
        out.append(HitColumns(ids[start:end], scores[start:end]))
        start = end
    return out


def columns(hits: Any) -> HitColumns:
    """One query's hits as columns, whether decoded here or by pymilvus."""
    if isinstance(hits, HitColumns):
        return hits
    return HitColumns(milvus_keys.item_ids(hits.ids), [float(d) for d in hits.distances])
