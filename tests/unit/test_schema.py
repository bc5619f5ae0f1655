import pytest

from service.features import DenseFeat, FeatureSchema, SchemaError, SparseFeat, VarLenSparseFeat
from training.datasets.base import DatasetConfig


def test_shipped_configs_parse_and_mark_history() -> None:
    posts = DatasetConfig.load("posts").schema
    assert posts.history is not None and posts.history.name == "read_post_id"
    assert posts["follow_topic_id"].table == "topic_id" == posts["topic_id"].table
    assert [f.name for f in posts.filterable()] == ["topic_id"]
    ml = DatasetConfig.load("movielens-100k").schema
    assert ml.history.table == "item_id"
    assert {f.side for f in ml.on("item")} == {"item"}


def test_fingerprint_changes_with_any_feature_attribute() -> None:
    base = DatasetConfig.load("posts").schema
    same = FeatureSchema.from_dict(base.to_dict())
    assert same == base and same.fingerprint() == base.fingerprint()
    changed = base.to_dict()
    changed["features"][2]["maxlen"] = 11
    assert FeatureSchema.from_dict(changed).fingerprint() != base.fingerprint()


def test_schema_rejects_bad_configs() -> None:
    user = SparseFeat("u", "user")
    item = SparseFeat("i", "item")
    with pytest.raises(SchemaError, match="duplicate"):
        FeatureSchema("s", "u", "i", (user, item, SparseFeat("u", "user")))
    with pytest.raises(SchemaError, match="key 'i'"):
        FeatureSchema("s", "u", "i", (user, SparseFeat("i", "user")))
    with pytest.raises(SchemaError, match="maxlen"):
        FeatureSchema("s", "u", "i", (user, item, VarLenSparseFeat("h", "user", maxlen=0)))
    with pytest.raises(SchemaError, match="dim"):
        FeatureSchema("s", "u", "i", (user, item, DenseFeat("d", "item", dim=0)))
    with pytest.raises(SchemaError, match="kind"):
        FeatureSchema.from_dict(
            {
                "name": "s",
                "user_key": "u",
                "item_key": "i",
                "features": [{"kind": "graph", "name": "x", "side": "user"}],
            }
        )
