"""Whether an item row must carry a feature is the schema's choice (`required`), applied by
the one item-row rule of service/validation.py."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from service.features import DenseFeat, FeatureSchema, SparseFeat
from service.features.schema import SchemaError
from service.validation import InvalidInput, RequestRules, check_item_row

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def schema(*item_features) -> FeatureSchema:
    return FeatureSchema(
        "t",
        "user_id",
        "item_id",
        (SparseFeat("user_id", "user"), SparseFeat("item_id", "item"), *item_features),
    )


REQUIRED = schema(
    SparseFeat("topic", "item", filterable=True, required=True), DenseFeat("q", "item")
)


def test_a_required_feature_left_out_is_refused_by_name():
    rules = RequestRules.from_schema(REQUIRED)
    assert rules.required_item == ("topic",)
    assert check_item_row({"item_id": "i1", "topic": "t1"}, rules) == "i1"  # q is optional
    for missing in ({}, {"topic": None}, {"topic": ""}, {"topic": math.nan}):
        with pytest.raises(InvalidInput) as err:
            check_item_row({"item_id": "i1", **missing}, rules, where="items[2]")
        assert err.value.field == "items[2].topic" and "required" in str(err.value)


def test_required_is_for_item_features_only():
    with pytest.raises(SchemaError, match="item features only"):
        FeatureSchema(
            "t",
            "user_id",
            "item_id",
            (SparseFeat("user_id", "user", required=True), SparseFeat("item_id", "item")),
        )


def test_required_round_trips_and_leaves_older_fingerprints_alone():
    assert FeatureSchema.from_dict(REQUIRED.to_dict()) == REQUIRED
    optional = schema(SparseFeat("topic", "item"))
    assert all("required" not in f for f in optional.to_dict()["features"])
    assert (
        optional.fingerprint() != schema(SparseFeat("topic", "item", required=True)).fingerprint()
    )


def test_the_posts_config_makes_an_explicit_choice_for_each_item_feature():
    text = (CONFIGS / "posts.toml").read_text()
    posts = FeatureSchema.from_toml(CONFIGS / "posts.toml")
    assert [f.name for f in posts.required_item_features()] == ["topic_id"]
    for feature in posts.on("item"):
        if feature.name != posts.item_key:
            start = re.search(rf'^name = "{feature.name}"', text, re.M).end()
            block = text[start:].split("[[schema.features]]")[0]
            assert "required = " in block, f"{feature.name}: required or not, say which"
