"""`ServingModel`: the online pipeline's model (`service.online.ports.ServableModel`) made of a
verified bundle, its collection and its item table.

A bundle's user vectors only make sense against its own item vectors, so the bundle, the
collection ``items_<version>`` and the item table encoded with that bundle's encoder are
loaded, checked and swapped together. The request's user + context row is encoded once, for
the user tower and the ranker's user-side inputs both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.bundle import Bundle
from service.bundle.manifest import ITEM_TOWER, RANKER, USER_TOWER
from service.bundle.onnx_model import ModelRunError
from service.bundle.ranker_split import OWNERS, ranker_by_user
from service.features.encoder import Arrays
from service.indexing.writer import ItemWriter
from service.model.item_table import ItemTable
from service.online.ports import EncodedUser, ModelInfo, RankerError
from service.validation import RequestRules, check_item_rows, check_profile, profile_features

log = logging.getLogger(__name__)


class ServingModel:
    def __init__(
        self,
        bundle: Bundle,
        collection: str,
        writer: ItemWriter,
        items: ItemTable,
        indexed_items: int,
        collection_ready: bool = True,
    ) -> None:
        encoder, schema = bundle.encoder, bundle.encoder.schema
        self.collection_ready = collection_ready
        self.bundle, self.items, self._writer, self._encoder = bundle, items, writer, encoder
        self.version = bundle.version
        self.collection = collection
        self.schema = schema
        self.rules = RequestRules.from_schema(schema)
        self.popular_items: Sequence[str] = bundle.popular_items
        self.info = ModelInfo(
            version=self.version,
            collection=self.collection,
            ranker=bundle.manifest.ranker,
            dataset=bundle.manifest.dataset,
            path=str(bundle.path),
            loaded_at=time.time(),
            indexed_items=indexed_items,
            metrics=bundle.manifest.metrics,
        )
        ranker_user_side = [f for f in bundle.features(RANKER) if f.side != "item"]
        self._request_features = list(
            {f.name: f for f in [*bundle.features(USER_TOWER), *ranker_user_side]}.values()
        )
        self._ranker_user_inputs = [s.name for s in encoder.input_specs(ranker_user_side)]
        self._item_features = [*bundle.features(ITEM_TOWER), *items.features]
        self._profile_features = profile_features(schema)
        self._user_ids = encoder.vocabs[schema[schema.user_key].table]
        self._user_tower = bundle.models[USER_TOWER]
        self._ranker = bundle.models[RANKER]
        self._ranker_by_user = ranker_by_user(self._ranker, self._ranker_user_inputs)
        self._item_tower = bundle.models[ITEM_TOWER]
        tower_inputs = [s.name for s in encoder.input_specs(bundle.features(ITEM_TOWER))]
        table_inputs = {s.name for s in encoder.input_specs(items.features)}
        self._item_tower_inputs = tower_inputs if set(tower_inputs) <= table_inputs else None
        self.check_ranker_by_user()  # a rewritten ranker is never used unchecked

    def knows_user(self, user_id: str) -> bool:
        return user_id in self._user_ids

    def ensure_collection(self) -> None:
        self._writer.ensure_collection()
        self.collection_ready = True

    def encode_users(self, rows: Sequence[Mapping[str, Any]]) -> EncodedUser:
        return self._encoder.encode_rows(rows, self._request_features)

    def embed_users(self, users: EncodedUser) -> np.ndarray:
        return self._user_tower.run(users)

    def gather(self, item_ids: Sequence[str]) -> Arrays:
        arrays, _known = self.items.gather(item_ids)
        return arrays

    def item_vectors(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The item tower's vectors of the catalog items among ``item_ids``, computed from the
        in-memory table: what the index holds for them, without its round trip (3.5 ms for
        five items on Lite with 100k). Empty when the table lacks an item-tower input."""
        if self._item_tower_inputs is None or not item_ids:
            return {}
        arrays, known = self.items.gather(item_ids)
        if not known.any():
            return {}
        batch = {name: arrays[name][known] for name in self._item_tower_inputs}
        vectors = np.asarray(self._item_tower.run(batch), np.float32)
        found = [i for i, k in zip(item_ids, known, strict=True) if k]
        return dict(zip(found, vectors, strict=True))

    def score(self, users: EncodedUser, owners: np.ndarray, items: Arrays) -> np.ndarray:
        """The ranker's batch: the gathered item features beside their requests' user-side
        inputs (row ``owners[i]`` for item ``i``), scored in one run; with the rewritten
        ranker each request's user side is computed once (`service.bundle.ranker_split`)."""
        try:
            if self._ranker_by_user is not None:
                return self._ranker_by_user.run({**items, **users, OWNERS: owners}).reshape(-1)
            return self._ranker.run(self._rows(users, owners, items)).reshape(-1)
        except ModelRunError as exc:
            raise RankerError(str(exc)) from exc

    def _rows(self, users: EncodedUser, owners: np.ndarray, items: Arrays) -> Arrays:
        batch = dict(items)
        batch.update({name: users[name][owners] for name in self._ranker_user_inputs})
        return batch

    def check_ranker_by_user(self) -> bool:
        """Keep the rewritten ranker only if it scores real rows as the exported one does:
        three users' rows interleaved over the catalog's first items. Returns whether it is used."""
        if self._ranker_by_user is None:
            return False
        known = self._user_ids.tokens[:3] or [""]
        users = self.encode_users([{self.schema.user_key: user_id} for user_id in known])
        ids = self.items.item_ids()[:30] or [""]
        owners = np.arange(len(ids)) % len(known)
        items = self.gather(ids)
        try:
            split = self._ranker_by_user.run({**items, **users, OWNERS: owners}).reshape(-1)
            same = np.allclose(
                split, self._ranker.run(self._rows(users, owners, items)).reshape(-1), atol=1e-5
            )
        except ModelRunError as exc:
            log.warning("rewritten ranker does not run (%s); ranking row by row", exc)
            same = False
        if not same:
            log.warning("rewritten ranker disagrees with %s; ranking row by row", self._ranker.path)
            self._ranker_by_user = None
        return same

    def check_items(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        return check_item_rows(items, self.rules, self._encode_item)

    def check_profile(self, features: Mapping[str, Any]) -> None:
        check_profile(features, self.rules, self._encode_profile)

    def write_items(
        self, upserts: Sequence[tuple[str, Mapping[str, Any]]], deletes: Sequence[str]
    ) -> None:
        self._writer.upsert([i for i, _ in upserts], [row for _, row in upserts])
        self._writer.delete(deletes)

    def _encode_item(self, row: Mapping[str, Any]) -> Arrays:
        return self._encoder.encode_rows([row], self._item_features)

    def _encode_profile(self, features: Mapping[str, Any]) -> Arrays:
        return self._encoder.encode_rows([features], self._profile_features)
