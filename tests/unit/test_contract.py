"""The request contract of a model: built from its schema, at its bounds accepted by the
contract *and* by the model's own checks (never looser than the encoder and the index), and
just past them refused with the field named."""

from __future__ import annotations

import pytest

from service.api.contract import MAX_CHARS, MAX_NUMBER, contract_of
from service.validation import InvalidInput

LONGEST = "é" * MAX_CHARS  # 2 UTF-8 bytes a character: still within the encoder's byte limit


def test_the_document_lists_the_models_fields_with_their_types(model):
    schemas = contract_of(model).json_schemas()
    assert set(schemas["Context"]["properties"]) == {"device"}
    assert set(schemas["UserFeatures"]["properties"]) == {"age_band", "favs"}
    assert set(schemas["ItemFeatures"]["properties"]) == {"topic", "quality"}
    assert set(schemas["Filter"]["properties"]) == {"topic"}
    assert all(s["additionalProperties"] is False for s in schemas.values())


@pytest.mark.parametrize(
    "profile",
    [
        {"age_band": LONGEST},
        {"age_band": MAX_NUMBER},
        {"age_band": -float(MAX_NUMBER)},
        {"age_band": None, "favs": None},
        {"favs": ["t1", "t2:0.5", "t3:999999999999999.999999999999999", "a:b:-3"]},
        {"favs": [7, 1.5, True]},
    ],
)
def test_a_profile_at_the_bounds_passes_the_contract_and_the_model(model, profile):
    contract_of(model).check("UserFeatures", profile, "features")
    model.check_profile(profile)


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"age_band": LONGEST + "x"}, "features.age_band"),
        ({"age_band": MAX_NUMBER + 1}, "features.age_band"),
        ({"age_band": ["a"]}, "features.age_band"),
        ({"favs": ["t3:1e39"]}, "features.favs"),
        ({"favs": ["t3:nan"]}, "features.favs"),
        ({"favs": "t3"}, "features.favs"),
        ({"device": "ios"}, "features.device"),
    ],
)
def test_past_the_bounds_a_profile_is_refused_naming_the_field(model, profile, field):
    with pytest.raises(InvalidInput) as refused:
        contract_of(model).check("UserFeatures", profile, "features")
    assert refused.value.field == field


def test_item_features_need_what_the_schema_requires_and_fit_the_index(model):
    contract = contract_of(model)
    good = {"topic": "t" * 64, "quality": [0.5]}
    contract.check("ItemFeatures", good, "items[0].features")
    model.check_items([("i1", good)])
    contract.check("ItemFeatures", {"quality": 0.5}, "items[0].features")
    for bad in ({"topic": "t" * 65}, {"topic": "a\x00b"}, {"quality": [1.0, 2.0]}):
        with pytest.raises(InvalidInput, match=r"^items\[0\]\.features"):
            contract.check("ItemFeatures", bad, "items[0].features")


def test_a_filter_takes_attribute_strings_only(model):
    contract = contract_of(model)
    contract.check("Filter", {"topic": ["t1", "t2"]}, "filter")
    for bad in ({"topic": [3]}, {"quality": ["x"]}, {"topic": "t1"}):
        with pytest.raises(InvalidInput, match=r"^filter"):
            contract.check("Filter", bad, "filter")


def test_a_diversity_cap_names_an_item_attribute(model):
    contract_of(model).check_request({}, {}, {}, "topic")
    with pytest.raises(InvalidInput) as refused:
        contract_of(model).check_request({}, {}, {}, "colour")
    assert refused.value.field == "diversity.attribute"
