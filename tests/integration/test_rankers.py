"""The newer rankers (widedeep, afm, nfm) on a small synthetic ``posts`` set with crosses:
training, ONNX parity, Wide & Deep's two optimizers, AFM's settings, crossed ids, and a
bundle that serves a Wide & Deep ranker through the service's code unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import need_tensorflow

need_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from service.bundle import load_bundle  # noqa: E402
from service.bundle.onnx_model import OnnxModel  # noqa: E402
from service.bundle.ranker_split import OWNERS, ranker_by_user  # noqa: E402
from service.features import CrossFeat, FeatureEncoder, FeatureSchema  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.datasets import load_dataset  # noqa: E402
from training.datasets.posts import SynthConfig, write  # noqa: E402
from training.examples import HistoryIndex, feature_columns  # noqa: E402
from training.export import export_checked  # noqa: E402
from training.fit import fit_ranker  # noqa: E402
from training.models.layers import CrossIds  # noqa: E402
from training.models.rankers import (  # noqa: E402
    RankerConfig,
    build_ranker,
    input_features,
    ranker_features,
    ranker_optimizer,
)
from training.models.widedeep import is_wide  # noqa: E402

CROSSES = (
    CrossFeat("follow_x_topic", ("follow_topic_id", "topic_id")),  # user list x item attribute
    CrossFeat("device_x_post", ("client_type", "post_id"), buckets=97),  # hashed
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-posts")
    write(SynthConfig(users=600, items=200, impressions_per_user=20), out)
    return out


@pytest.fixture(scope="module")
def encoded(tiny_dir: Path):
    dataset = load_dataset("posts", tiny_dir, seed=0)
    base = dataset.schema
    dataset.schema = FeatureSchema(
        base.name, base.user_key, base.item_key, (*base.features, *CROSSES)
    )
    history = HistoryIndex(dataset)
    train = feature_columns(dataset, dataset.part("train"), history)
    encoder = FeatureEncoder.fit(dataset.schema, train)
    test = dataset.part("test")
    feats = dataset.schema.features
    return (
        dataset.schema,
        encoder,
        (encoder.encode(train, feats), dataset.part("train")["label"].to_numpy()),
        (encoder.encode(feature_columns(dataset, test, history), feats), test["label"].to_numpy()),
    )


@pytest.mark.parametrize("name", ["widedeep", "afm", "nfm"])
def test_ranker_trains_and_passes_parity(name: str, encoded, tmp_path: Path) -> None:
    schema, encoder, train, held_out = encoded
    cfg = replace(RankerConfig(name=name), epochs=2, batch_size=256)
    keras.utils.set_random_seed(0)
    model = build_ranker(encoder, schema.features, cfg)
    fitted = fit_ranker(model, train, held_out, cfg)
    assert fitted["val_auc"] > 0.55, fitted  # learns something in two epochs
    feats = input_features(ranker_features(name, schema.features))
    assert [f.name for f in feats] == [f.name for f in schema.features if f not in CROSSES]
    specs = encoder.input_specs(feats)
    rows = {s.name: held_out[0][s.name] for s in specs}
    report = export_checked(model, specs, tmp_path / f"{name}.onnx", rows, tolerance=1e-4)
    assert report["rows"] >= 1000 and report["max_abs_diff"] <= 1e-4
    onnx = OnnxModel(tmp_path / f"{name}.onnx")
    assert sorted(onnx.input_names) == sorted(s.name for s in specs)
    user_inputs = [s.name for s in encoder.input_specs([f for f in feats if f.side != "item"])]
    by_user = ranker_by_user(onnx, user_inputs)  # each request's user side once, crosses too
    assert by_user is not None
    owners = np.arange(200) % 10  # ten users' rows interleaved over 200 items
    items = {n: v[:200] for n, v in rows.items() if n not in user_inputs}
    users = {n: rows[n][:10] for n in user_inputs}
    expected = onnx.run({**items, **{n: v[owners] for n, v in users.items()}})
    got = by_user.run({**items, **users, OWNERS: owners})
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_only_widedeep_reads_the_crosses(encoded) -> None:
    schema, encoder, _, _ = encoded
    for name in ("widedeep", "deepfm"):
        model = build_ranker(encoder, schema.features, RankerConfig(name=name))
        layers = {layer.name for layer in model.layers}
        assert ("wide_follow_x_topic" in layers) == (name == "widedeep")
        assert ("wide_device_x_post" in layers) == (name == "widedeep")
    table = build_ranker(encoder, schema.features, RankerConfig(name="widedeep")).get_layer(
        "wide_follow_x_topic"
    )
    sizes = encoder.vocab_size("topic_id") * encoder.vocab_size("topic_id")
    assert table.input_dim == sizes + 1  # exact ids: every pair of topic ids, plus padding


def test_widedeep_applies_ftrl_to_wide_and_adagrad_to_deep(encoded) -> None:
    """One training step equals FTRL (with L1) on the wide variables and Adagrad on the deep
    ones, each applied by hand to the same gradients."""
    schema, encoder, train, _ = encoded
    cfg = replace(RankerConfig(name="widedeep"), dropout=0.0, wide_l1=0.01, wide_l2=0.001)
    keras.utils.set_random_seed(0)
    model = build_ranker(encoder, schema.features, cfg)
    batch = {name: values[:256] for name, values in train[0].items()}
    x = {t.name: batch[t.name] for t in model.inputs}
    y = train[1][:256].astype(np.float32).reshape(-1, 1)
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    with tf.GradientTape() as tape:
        loss = keras.losses.binary_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss) + sum(model.losses)
    grads = tape.gradient(loss, variables)

    model.compile(optimizer=ranker_optimizer(cfg), loss="binary_crossentropy")
    model.train_on_batch(x, y)

    wide = [i for i, v in enumerate(variables) if is_wide(v)]
    deep = [i for i, v in enumerate(variables) if not is_wide(v)]
    assert {variables[i].path.split("/")[0] for i in wide} >= {
        "wide_client_id",
        "wide_follow_x_topic",
        "wide_device_x_post",
        "wide_bias",
    }
    assert {variables[i].path.split("/")[0] for i in deep} >= {
        "deep_client_id",
        "deep_0",
        "deep_out",
    }
    ftrl = keras.optimizers.Ftrl(
        learning_rate=cfg.wide_learning_rate,
        l1_regularization_strength=cfg.wide_l1,
        l2_regularization_strength=cfg.wide_l2,
    )
    adagrad = keras.optimizers.Adagrad(learning_rate=cfg.deep_learning_rate)
    for optimizer, indices in ((ftrl, wide), (adagrad, deep)):
        copies = [keras.Variable(before[i]) for i in indices]
        # the same gradient objects (sparse slices for embeddings), as the model's step gets
        optimizer.apply_gradients(zip([grads[i] for i in indices], copies, strict=True))
        for i, copy in zip(indices, copies, strict=True):
            np.testing.assert_allclose(
                np.array(variables[i]),
                np.array(copy),
                rtol=1e-5,
                atol=1e-6,
                err_msg=variables[i].path,
            )
    # L1 in FTRL zeroes weights exactly (Adam or Adagrad never would); the deep side has none
    wide_values = np.concatenate(
        [np.ravel(variables[i]) for i in wide if variables[i].shape[0] > 2]
    )
    assert (wide_values == 0).mean() > 0.5
    assert all(
        (np.ravel(variables[i]) != 0).all() for i in deep if "embeddings" in variables[i].path
    )
    names = {type(o).__name__ for o in model.optimizer.optimizers}
    assert names == {"Ftrl", "Adagrad"}


@pytest.mark.parametrize("attention_dim", [4, 16])
def test_afm_attention_settings_are_configurable(encoded, attention_dim: int) -> None:
    schema, encoder, train, _ = encoded
    cfg = replace(
        RankerConfig(name="afm"),
        attention_dim=attention_dim,
        attention_dropout=0.5,
        embedding_dim=6,
    )
    model = build_ranker(encoder, schema.features, cfg)
    attention = model.get_layer("afm_attention")
    assert tuple(attention.w.shape) == (6, attention_dim)
    assert attention.dropout.rate == 0.5
    fields = len([f for f in schema.features if f.kind in ("sparse", "varlen")])
    assert len(attention.left) == fields * (fields - 1) // 2  # every pair once
    x = {t.name: train[0][t.name][:64] for t in model.inputs}
    inference = np.asarray(model(x, training=False))
    np.testing.assert_allclose(inference, np.asarray(model(x, training=False)))
    assert not np.allclose(inference, np.asarray(model(x, training=True)))  # dropout is live


def test_cross_ids_by_hand() -> None:
    a = np.array([[2], [3], [1]])  # vocabulary size 4
    b = np.array([[2, 4, 0], [0, 0, 0], [3, 2, 0]])  # vocabulary size 5, 0 = padding
    exact = np.asarray(CrossIds([4, 5])([a, b]))
    expected = np.array([[2 * 5 + 2, 2 * 5 + 4, -1], [-1, -1, -1], [1 * 5 + 3, 1 * 5 + 2, -1]]) + 1
    np.testing.assert_array_equal(exact, expected)  # padded pairs: -1 + 1 = 0
    hashed = np.asarray(CrossIds([4, 5], buckets=7)([a, b]))
    np.testing.assert_array_equal(hashed, np.where(expected > 0, (expected - 1) % 7 + 1, 0))
    c = np.array([[1, 2], [0, 3], [2, 0]])  # two lists: every pair of values
    assert np.asarray(CrossIds([5, 4])([b, c])).shape == (3, 6)


def test_ranker_overrides_apply_to_one_ranker() -> None:
    cfg = TrainConfig.from_dict(
        {"ranker": {"epochs": 7}, "ranker_overrides": {"afm": {"attention_dim": 32}}}
    )
    assert cfg.ranker_for("afm").attention_dim == 32 and cfg.ranker_for("afm").epochs == 7
    assert cfg.ranker_for("fm").attention_dim == RankerConfig().attention_dim
    assert cfg.ranker_for("lr").learning_rate == 1e-2  # the shipped default override stays
    with pytest.raises(ValueError, match=r"ranker_overrides\.afm: unknown setting 'attention'"):
        TrainConfig.from_dict({"ranker_overrides": {"afm": {"attention": 3}}})


def test_a_widedeep_bundle_serves_through_the_service_unchanged(
    tiny_dir: Path, tmp_path: Path
) -> None:
    """A data set config with crosses, `train_bundle --ranker widedeep`, then the service's
    loader: crosses add no input, and encoding user and item rows apart (as the online item
    table does) scores exactly as encoding them together."""
    from training.pipeline import train_bundle

    shipped = (Path(__file__).parents[2] / "training" / "configs" / "posts.toml").read_text()
    crossed = tmp_path / "posts-crossed.toml"
    crossed.write_text(
        shipped
        + '\n[[schema.features]]\nkind = "cross"\nname = "follow_x_topic"\n'
        + 'features = ["follow_topic_id", "topic_id"]\n'
    )
    cfg = TrainConfig.from_dict(
        {"ranker": {"name": "widedeep", "epochs": 1}, "baselines": [], "dssm": {"epochs": 1}}
    )
    path = train_bundle(str(crossed), tiny_dir, tmp_path / "bundles", cfg, report=lambda _m: None)
    bundle = load_bundle(path)
    assert bundle.manifest.ranker == "widedeep"
    assert "follow_x_topic" not in bundle.manifest.models["ranker"].features
    parity = json.loads((path / "parity.json").read_text())["ranker"]
    assert parity["max_abs_diff"] <= 1e-4

    users = {
        "client_id": ["u1", "u2", "u3"],
        "follow_topic_id": [["t1", "t2"], ["t3"], []],
        "all_topic_fav_7": [["t1:0.6"], [], None],
        "read_post_id": [["p1"], [], ["p2"]],
        "client_type": ["ios", "web", "android"],
    }
    items = {"post_id": ["p5", "p6", "p7"], "topic_id": ["t1", "t3", "t2"]}
    together = bundle.rank({**users, **items})
    encoder, feats = bundle.encoder, bundle.features("ranker")
    user_part = encoder.encode(users, [f for f in feats if f.side != "item"], 3)
    item_part = encoder.encode(items, [f for f in feats if f.side == "item"], 3)
    apart = bundle.models["ranker"].run({**user_part, **item_part}).reshape(-1)
    np.testing.assert_allclose(apart, together, atol=1e-7)
    followed = bundle.rank({**users, **items, "follow_topic_id": [["t1"], ["t3"], ["t2"]]})
    assert not np.allclose(followed, together)  # the cross (and follows) move the score


def test_a_huge_exact_cross_asks_for_buckets(encoded, monkeypatch) -> None:
    from training.models import layers

    schema, encoder, _, _ = encoded
    monkeypatch.setattr(layers, "MAX_EXACT_CROSS", 1000)  # follow_x_topic has 22 x 22 ids
    build_ranker(encoder, schema.features, RankerConfig(name="widedeep"))
    monkeypatch.setattr(layers, "MAX_EXACT_CROSS", 400)
    with pytest.raises(ValueError, match=r"follow_x_topic.*give it `buckets`"):
        build_ranker(encoder, schema.features, RankerConfig(name="widedeep"))
