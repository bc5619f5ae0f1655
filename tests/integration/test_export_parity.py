"""Every model family through tf2onnx and onnxruntime, compared with Keras on held-out rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import need_tensorflow

need_tensorflow()

from service.bundle.onnx_model import OnnxModel  # noqa: E402
from service.features import FeatureEncoder  # noqa: E402
from training.datasets import load_dataset  # noqa: E402
from training.datasets.posts import SynthConfig, write  # noqa: E402
from training.examples import HistoryIndex, feature_columns  # noqa: E402
from training.export import ParityError, export_checked  # noqa: E402
from training.fit import fit_ranker  # noqa: E402
from training.models.dssm import DSSMConfig, build_towers, item_features, user_features  # noqa: E402
from training.models.rankers import RankerConfig, build_ranker  # noqa: E402


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tiny")
    write(SynthConfig(users=600, items=200, impressions_per_user=20), data_dir)
    dataset = load_dataset("posts", data_dir, seed=0)
    history = HistoryIndex(dataset)
    train = feature_columns(dataset, dataset.part("train"), history)
    encoder = FeatureEncoder.fit(dataset.schema, train)
    held_out = dataset.part("test")
    arrays = encoder.encode(feature_columns(dataset, held_out, history), dataset.schema.features)
    return (
        dataset,
        encoder,
        {
            "train": (
                encoder.encode(train, dataset.schema.features),
                dataset.part("train")["label"].to_numpy(),
            ),
            "held_out": (arrays, held_out["label"].to_numpy()),
        },
    )


@pytest.mark.parametrize("name", ["lr", "fm", "deepfm"])
def test_ranker_parity(name: str, encoded, tmp_path: Path) -> None:
    dataset, encoder, data = encoded
    cfg = replace(RankerConfig(name=name), epochs=1, batch_size=256)
    model = build_ranker(encoder, dataset.schema.features, cfg)
    fit_ranker(model, data["train"], data["held_out"], cfg)
    specs = encoder.input_specs(dataset.schema.features)
    rows = data["held_out"][0]
    assert len(rows["post_id"]) >= 1000
    report = export_checked(model, specs, tmp_path / f"{name}.onnx", rows, tolerance=1e-4)
    assert report["rows"] >= 1000 and report["max_abs_diff"] <= 1e-4

    onnx = OnnxModel(tmp_path / f"{name}.onnx")
    assert sorted(onnx.input_names) == sorted(s.name for s in specs)
    got = onnx.run(rows)
    np.testing.assert_allclose(got, model.predict(rows, verbose=0), atol=1e-4)
    assert got.shape == (len(rows["post_id"]), 1)


def test_tower_parity_and_unit_norm(encoded, tmp_path: Path) -> None:
    dataset, encoder, data = encoded
    user_tower, item_tower = build_towers(encoder, DSSMConfig(output_dim=16))
    rows = data["held_out"][0]
    for tower, feats in (
        (user_tower, user_features(dataset.schema)),
        (item_tower, item_features(dataset.schema)),
    ):
        specs = encoder.input_specs(feats)
        path = tmp_path / f"{tower.name}.onnx"
        export_checked(tower, specs, path, {s.name: rows[s.name] for s in specs}, tolerance=1e-4)
        out = OnnxModel(path).run(rows)
        assert out.shape == (len(rows["post_id"]), 16)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_parity_gate_fails_loudly(encoded, tmp_path: Path) -> None:
    dataset, encoder, data = encoded
    model = build_ranker(encoder, dataset.schema.features, RankerConfig(name="lr"))
    specs = encoder.input_specs(dataset.schema.features)
    with pytest.raises(ParityError, match=r"lr\.onnx: max abs diff .* > -1"):
        export_checked(model, specs, tmp_path / "lr.onnx", data["held_out"][0], tolerance=-1.0)
