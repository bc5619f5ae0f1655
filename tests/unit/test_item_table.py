"""The in-memory item table over a real store: a catalog row that no longer encodes is
skipped (and counted) instead of stopping every later sync."""

from __future__ import annotations

import logging

from service.model import ItemTable
from tests.fakes import SCHEMA, FakeModel


def test_a_row_that_does_not_encode_is_skipped_logged_once_and_counted(
    model: FakeModel, store, caplog
):
    table = ItemTable(model.encoder, SCHEMA.on("item"), ["topic"])
    good = {"item_id": "i1", "topic": "t1", "quality": [1.0]}
    bad = {"item_id": "i2", "topic": "t2", "quality": [1.0, 2.0]}  # one value too many
    store.put_items([("i1", good), ("i2", bad), ("i3", {**good, "item_id": "i3"})])
    with caplog.at_level(logging.WARNING, "service.model.item_table"):
        table.sync(store)
        store.put_items([("i4", {**good, "item_id": "i4"})])
        table.sync(store)
    assert "i1" in table and "i3" in table and "i4" in table and "i2" not in table
    assert table.unencodable == {"i2"}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "i2" in warnings[0] and "2.0" not in warnings[0]
    store.put_items([("i2", {**bad, "quality": [0.5]})])  # fixed
    table.sync(store)
    assert "i2" in table and not table.unencodable


def test_an_unencodable_item_already_in_the_table_leaves_it(model: FakeModel, store):
    table = ItemTable(model.encoder, SCHEMA.on("item"), ["topic"])
    store.put_items([("i1", {"item_id": "i1", "topic": "t1", "quality": [1.0]})])
    table.sync(store)
    store.put_items([("i1", {"item_id": "i1", "topic": "t1", "quality": "high"})])
    table.sync(store)
    assert "i1" not in table and table.unencodable == {"i1"}
