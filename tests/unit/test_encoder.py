import json

import numpy as np
import pytest

from service.features import (
    OOV_ID,
    PAD_ID,
    DenseFeat,
    EncodingError,
    FeatureEncoder,
    FeatureSchema,
    SparseFeat,
    VarLenSparseFeat,
)

SCHEMA = FeatureSchema(
    "toy",
    "user",
    "post",
    (
        SparseFeat("user", "user"),
        VarLenSparseFeat("follows", "user", maxlen=3, embedding_name="topic"),
        VarLenSparseFeat("favs", "user", maxlen=2, weighted=True, embedding_name="topic"),
        VarLenSparseFeat("reads", "user", maxlen=3, embedding_name="post", from_events=True),
        SparseFeat("post", "item"),
        SparseFeat("topic", "item"),
        DenseFeat("age", "user"),
        DenseFeat("vec", "item", dim=2, normalize=False),
    ),
)
TRAIN = {
    "user": ["u1", "u2", "u1"],
    "follows": [["t1", "t2"], ["t2"], []],
    "favs": [["t1:0.5", "t3:0.5"], [("t2", 1.0)], None],
    "reads": [["p1"], ["p1", "p2"], []],
    "post": ["p1", "p2", "p3"],
    "topic": ["t1", "t2", "t2"],
    "age": [20.0, 40.0, 30.0],
    "vec": [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]],
}


@pytest.fixture
def encoder() -> FeatureEncoder:
    return FeatureEncoder.fit(SCHEMA, TRAIN)


def test_shared_tables_share_one_vocabulary(encoder: FeatureEncoder) -> None:
    assert set(encoder.vocabs) == {"user", "topic", "post"}
    # t2 is counted over follows, favs and topic: most frequent, so the first id
    assert encoder.vocabs["topic"].id("t2") == 2
    out = encoder.encode(
        {"follows": [["t2"]], "topic": ["t2"]}, [SCHEMA["follows"], SCHEMA["topic"]]
    )
    assert out["follows"][0, 0] == out["topic"][0, 0] == 2


def test_oov_and_padding(encoder: FeatureEncoder) -> None:
    out = encoder.encode_rows(
        [{"user": "never-seen", "follows": ["t1", "nope"], "reads": None}, {}],
        [SCHEMA["user"], SCHEMA["follows"], SCHEMA["reads"]],
    )
    assert out["user"].tolist() == [[OOV_ID], [OOV_ID]]
    assert out["follows"][0].tolist() == [encoder.vocabs["topic"].id("t1"), OOV_ID, PAD_ID]
    assert out["follows"][1].tolist() == [PAD_ID] * 3
    assert out["reads"].tolist() == [[PAD_ID] * 3] * 2
    assert out["user"].dtype == np.int64


def test_weighted_values_in_every_accepted_form(encoder: FeatureEncoder) -> None:
    rows = [
        {"favs": ["t1:0.25", "t2:0.75"]},
        {"favs": [("t1", 2), ("t2", 3)]},
        {"favs": {"t1": 4.0}},
    ]
    out = encoder.encode_rows(rows, [SCHEMA["favs"]])
    t1, t2 = encoder.vocabs["topic"].id("t1"), encoder.vocabs["topic"].id("t2")
    assert out["favs"].tolist() == [[t1, t2], [t1, t2], [t1, PAD_ID]]
    np.testing.assert_allclose(out["favs_weight"], [[0.25, 0.75], [2, 3], [4, 0]])
    assert out["favs_weight"].dtype == np.float32
    with pytest.raises(EncodingError, match="favs"):
        encoder.encode_rows([{"favs": ["t1:heavy"]}], [SCHEMA["favs"]])


def test_long_lists_keep_the_most_recent(encoder: FeatureEncoder) -> None:
    out = encoder.encode_rows([{"reads": ["p3", "p3", "p1", "p2"]}], [SCHEMA["reads"]])
    vocab = encoder.vocabs["post"]
    assert out["reads"][0].tolist() == [vocab.id("p3"), vocab.id("p1"), vocab.id("p2")]


def test_dense_standardized_with_training_stats(encoder: FeatureEncoder) -> None:
    out = encoder.encode_rows(
        [{"age": 30.0}, {"age": None}, {"age": 40.0, "vec": [3, 4]}], [SCHEMA["age"], SCHEMA["vec"]]
    )
    std = np.std([20.0, 40.0, 30.0])
    np.testing.assert_allclose(out["age"][:, 0], [0.0, 0.0, 10.0 / std], rtol=1e-6)
    np.testing.assert_allclose(out["vec"], [[0, 0], [0, 0], [3, 4]])  # normalize=False: as given
    with pytest.raises(EncodingError, match="vec: expected 2"):
        encoder.encode_rows([{"vec": [1, 2, 3]}], [SCHEMA["vec"]])


def test_numbers_and_strings_are_one_token() -> None:
    schema = FeatureSchema("n", "u", "i", (SparseFeat("u", "user"), SparseFeat("i", "item")))
    enc = FeatureEncoder.fit(schema, {"u": [1995, 7], "i": ["a", "b"]})
    ids = enc.encode({"u": ["1995", 1995.0, np.int64(1995), 7]}, [schema["u"]])["u"][:, 0]
    assert len(set(ids[:3].tolist())) == 1 and ids[0] != OOV_ID
    assert ids[3] not in (ids[0], OOV_ID)


def test_round_trip_through_json(encoder: FeatureEncoder) -> None:
    restored = FeatureEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    rows = [
        {
            "user": "u2",
            "follows": ["t2", "zz"],
            "favs": ["t3:0.1"],
            "reads": ["p2"],
            "post": "p9",
            "topic": "t1",
            "age": 33.0,
            "vec": [0.1, 0.2],
        }
    ]
    a = encoder.encode_rows(rows, SCHEMA.features)
    b = restored.encode_rows(rows, SCHEMA.features)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert restored.schema.fingerprint() == SCHEMA.fingerprint()


def test_input_specs_name_every_array(encoder: FeatureEncoder) -> None:
    specs = encoder.input_specs(SCHEMA.features)
    arrays = encoder.encode(TRAIN, SCHEMA.features)
    assert [s.name for s in specs] == list(arrays)
    for spec in specs:
        assert arrays[spec.name].shape == (3, spec.width)
        assert arrays[spec.name].dtype == np.dtype(spec.dtype)
