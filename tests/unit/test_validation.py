"""The one set of input rules: ids, attribute values within the index's bounds, item rows,
profiles and request names; and values the encoder refuses."""

from __future__ import annotations

import numpy as np
import pytest

from service.features import EncodingError, FeatureEncoder
from service.validation import (
    InvalidInput,
    RequestRules,
    ScalarField,
    attribute_columns,
    attribute_value,
    check_id,
    check_item_row,
    check_item_rows,
    check_profile,
    check_raw_scalar,
    check_raw_value,
    check_request_names,
    id_from_file,
)
from tests.fakes import SCHEMA

RULES = RequestRules.from_schema(SCHEMA)


GOOD_IDS = ["p1", "A-b_c.d:e@f", "7", "x" * 256, "a b", "it's", 'say "hi"', "sku/1", "Müller", "名"]


@pytest.mark.parametrize("good", GOOD_IDS)
def test_ids_that_pass(good):
    assert check_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 257, "a\n", "\x00", "\x7f", "a\x9fb", "\ud800", 7])
def test_ids_that_do_not(bad):
    with pytest.raises(InvalidInput, match="is not an id") as caught:
        check_id(bad, "items[0].item_id")
    assert caught.value.field == "items[0].item_id"


def test_a_missing_id_says_required_and_file_ids_become_strings():
    with pytest.raises(InvalidInput, match="post_id: required"):
        check_id(None, "post_id")
    assert id_from_file(7) == "7" and id_from_file(np.int64(7)) == "7" and id_from_file(7.0) == "7"
    assert id_from_file("p1") == "p1" and id_from_file(None) is None and id_from_file(True) is True


def test_rules_come_from_the_schema():
    assert RULES.user_key == "user_id" and RULES.history == "recent"
    assert RULES.profile == {"age_band", "favs"} and RULES.context == {"device"}
    assert RULES.filterable == {"topic"} and RULES.item_fields == {"item_id", "topic", "quality"}
    assert RULES.attributes == (ScalarField("topic", "string"),)


def test_attribute_values_and_bounds():
    tags = ScalarField("tags", "string_array", max_length=4, max_capacity=2)
    columns = attribute_columns([ScalarField("topic", "string"), tags], [{"tags": "ab"}, {}])
    assert columns == {"topic": ["", ""], "tags": [["ab"], []]}  # a bare string is one value
    assert attribute_value(tags, ["ab", "cd"]) == ["ab", "cd"]
    for value, problem in ((["a", "b", "c"], "at most 2"), (["abcde"], "4 bytes"), ("ab", "list")):
        with pytest.raises(InvalidInput, match=problem):
            attribute_value(tags, value)
    with pytest.raises(InvalidInput, match="int64"):
        attribute_value(ScalarField("n", "int"), 2**64)
    with pytest.raises(InvalidInput, match="control"):
        attribute_value(ScalarField("s", "string"), "a\x00b")


def test_item_rows_keep_the_id_under_the_item_key_and_name_the_row_and_field():
    assert check_item_rows([("a/b c", {"topic": "t1"})], RULES) == [
        {"topic": "t1", "item_id": "a/b c"}
    ]
    cases = [
        (("a\n", {"topic": "t1"}), "items[0].item_id"),
        (("a", {"item_id": "b"}), "items[0].features.item_id"),
        (("a", {"topic": "t" * 257}), "items[0].features.topic"),
        (("a", {"colour": "red"}), "items[0].features.colour"),
    ]
    for item, field in cases:
        with pytest.raises(InvalidInput) as caught:
            check_item_rows([item], RULES)
        assert caught.value.field == field
    # a file's extra columns are not the row's fault: the batch job checks rows one by one
    assert check_item_row({"item_id": "a", "colour": "red"}, RULES) == "a"


def test_encoding_problems_name_the_feature():
    encoder = FeatureEncoder.fit(SCHEMA, {"topic": ["t1"]})

    def encode(row):
        return encoder.encode_rows([row], SCHEMA.on("item"))

    with pytest.raises(InvalidInput) as caught:
        check_item_row({"item_id": "a", "quality": [1.0, 2.0]}, RULES, encode, "items[2]")
    assert caught.value.field == "items[2].quality"
    profile = SCHEMA.on("user")
    with pytest.raises(InvalidInput) as caught:
        check_profile({"favs": ["t1:x"]}, RULES, lambda f: encoder.encode_rows([f], profile))
    assert caught.value.field == "features.favs"
    with pytest.raises(InvalidInput, match="not a user profile feature"):
        check_profile({"recent": ["i1"]}, RULES)


@pytest.mark.parametrize(
    ("feature", "value"),
    [
        ("quality", [float("inf")]),
        ("quality", [1e39]),  # finite in float64, not in float32
        ("quality", [float("nan")]),  # a NaN inside a vector (a bare NaN means missing)
        ("quality", [1.0, 2.0]),
        ("quality", ["abc"]),
        ("favs", ["t1:nan"]),
        ("favs", ["t1:inf"]),
        ("favs", ["t1:1e39"]),
        ("favs", [("t1", "heavy")]),
    ],
)
def test_the_encoder_refuses_values_a_model_cannot_take(feature, value):
    encoder = FeatureEncoder.fit(SCHEMA, {"topic": ["t1"]})
    with pytest.raises(EncodingError) as caught:
        encoder.encode_rows([{feature: value}], SCHEMA.features)
    assert caught.value.feature == feature


def test_a_missing_dense_value_still_encodes_as_its_default():
    encoder = FeatureEncoder.fit(SCHEMA, {"quality": [[1.0], [3.0]]})
    for missing in (None, float("nan")):
        arrays = encoder.encode_rows([{"quality": missing}], SCHEMA.on("item"))
        assert arrays["quality"].tolist() == [[0.0]]  # not normalized: the default is 0


def test_request_names():
    check_request_names(RULES, ["device"], ["age_band"], ["topic"])
    with pytest.raises(InvalidInput, match=r"context.age_band: unknown; this model accepts"):
        check_request_names(RULES, ["age_band"], [], [])


@pytest.mark.parametrize(
    "good", [None, True, 0, -(2**63), 2**63 - 1, 1e24, -3.4e38, "", "ünï 🙂", "x" * 1024, ["a", 1]]
)
def test_raw_values_that_pass(good):
    assert check_raw_value(good) is good


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        (2**63, "64 bits"),
        (-(2**63) - 1, "64 bits"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (1e39, "float32"),
        ("\ud800", "lone surrogate"),
        ("x" * 1025, "1024 UTF-8 bytes"),
        (["ok", "\udfff"], "lone surrogate"),
        ([[1]], "a string, number or bool"),
        ({"a": 1}, "a string, number or bool"),
        (["a"] * 1001, "at most 1000"),
    ],
)
def test_raw_values_that_do_not(bad, rule):
    with pytest.raises(ValueError, match=rule) as caught:
        check_raw_value(bad)
    assert "\ud800" not in str(caught.value) and "\udfff" not in str(caught.value)


def test_filter_scalars_are_not_null_or_lists():
    assert check_raw_scalar("t1") == "t1"
    for bad in (None, ["t1"]):
        with pytest.raises(ValueError):
            check_raw_scalar(bad)


def test_an_attribute_or_filter_with_a_lone_surrogate_is_refused_in_ascii():
    field = ScalarField("topic", "string")
    with pytest.raises(InvalidInput, match=r"'\\ud800' is not a string of valid Unicode"):
        attribute_value(field, "\ud800")
