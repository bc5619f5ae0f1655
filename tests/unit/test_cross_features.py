"""Crossed features: declared in the schema, no model input, no vocabulary (the model
crosses the parts' ids), and the rest of the schema behaves as before."""

import pytest

from service.features import (
    CrossFeat,
    DenseFeat,
    FeatureEncoder,
    FeatureSchema,
    SchemaError,
    SparseFeat,
    VarLenSparseFeat,
)
from training.datasets.base import DatasetConfig

USER, ITEM = SparseFeat("u", "user"), SparseFeat("i", "item")
TAGS = VarLenSparseFeat("tags", "item", maxlen=3)
SCHEMA = FeatureSchema(
    "toy", "u", "i", (USER, ITEM, TAGS, CrossFeat("u_x_tags", ("u", "tags"), buckets=0))
)


def test_cross_round_trips_and_changes_the_fingerprint() -> None:
    data = SCHEMA.to_dict()
    assert data["features"][-1] == {
        "kind": "cross",
        "name": "u_x_tags",
        "features": ("u", "tags"),
        "buckets": 0,
    }
    again = FeatureSchema.from_dict({**data, "features": [dict(f) for f in data["features"]]})
    assert again == SCHEMA and again.fingerprint() == SCHEMA.fingerprint()
    without = FeatureSchema("toy", "u", "i", (USER, ITEM, TAGS))
    assert without.fingerprint() != SCHEMA.fingerprint()


def test_cross_is_on_no_tower_side_and_has_no_table_or_input() -> None:
    cross = SCHEMA["u_x_tags"]
    assert cross.side == "cross"
    assert SCHEMA.on("user", "context") == [USER] and SCHEMA.on("item") == [ITEM, TAGS]
    assert SCHEMA.crosses() == [cross]
    assert SCHEMA.categorical() == [USER, ITEM, TAGS]
    assert set(SCHEMA.tables()) == {"u", "i", "tags"}
    encoder = FeatureEncoder.fit(SCHEMA, {"u": ["a"], "i": ["x"], "tags": [["t1", "t2"]]})
    assert set(encoder.vocabs) == {"u", "i", "tags"}
    assert [s.name for s in encoder.input_specs(SCHEMA.features)] == ["u", "i", "tags"]
    out = encoder.encode_rows([{"u": "a", "i": "x", "tags": ["t2"]}], SCHEMA.features)
    assert set(out) == {"u", "i", "tags"}


@pytest.mark.parametrize(
    ("cross", "message"),
    [
        (CrossFeat("c", ("u",)), "two or more distinct"),
        (CrossFeat("c", ("u", "u")), "two or more distinct"),
        (CrossFeat("c", ("u", "nope")), "'nope' is not a sparse or varlen"),
        (CrossFeat("c", ("u", "d")), "'d' is not a sparse or varlen"),
        (CrossFeat("c", ("u", "i"), buckets=-1), "buckets"),
    ],
)
def test_schema_rejects_bad_crosses(cross: CrossFeat, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        FeatureSchema("s", "u", "i", (USER, ITEM, DenseFeat("d", "user"), cross))


def test_a_cross_cannot_take_a_side() -> None:
    raw = {"kind": "cross", "name": "c", "features": ["u", "i"], "side": "user"}
    with pytest.raises(SchemaError, match="side"):
        FeatureSchema.from_dict(
            {
                "name": "s",
                "user_key": "u",
                "item_key": "i",
                "features": [
                    {"kind": "sparse", "name": "u", "side": "user"},
                    {"kind": "sparse", "name": "i", "side": "item"},
                    raw,
                ],
            }
        )


def test_movielens_config_declares_crosses_and_the_ranking_features() -> None:
    config = DatasetConfig.load("movielens-100k")
    crosses = {c.name: c.features for c in config.schema.crosses()}
    assert crosses["user_x_genres"] == ("user_id", "genres")
    assert all(set(parts) <= {f.name for f in config.schema.features} for parts in crosses.values())
    protocol = ["user_id", "item_id", "age", "gender", "occupation", "release_year", "genres"]
    assert [n for n in config.ranker_features if n not in crosses] == protocol
    assert "recent_items" not in config.ranker_features
    assert DatasetConfig.load("posts").ranker_features == ()
