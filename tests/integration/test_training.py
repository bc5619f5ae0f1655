"""Training end to end on real data: bundles, metrics, parity, tampering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.bundle import BundleError, load_bundle
from service.bundle.manifest import MANIFEST_FILE, manifest_digest
from tests.conftest import need_tensorflow


def test_posts_bundle_is_complete_and_verified(posts_bundle: Path) -> None:
    bundle = load_bundle(posts_bundle)
    manifest = bundle.manifest
    assert posts_bundle.name == manifest.version
    assert set(manifest.files) == {
        "encoder.json",
        "metrics.json",
        "parity.json",
        "popular.json",
        "user_tower.onnx",
        "item_tower.onnx",
        "ranker.onnx",
    }
    assert manifest.opset >= 17 and manifest.ranker == "deepfm"
    assert manifest.models["user_tower"].output_dim == manifest.embedding_dim
    assert {"tensorflow", "tf2onnx", "onnxruntime"} <= set(manifest.libraries)
    parity = json.loads((posts_bundle / "parity.json").read_text())
    for role in ("user_tower", "item_tower", "ranker"):
        assert parity[role]["rows"] >= 1000
        assert parity[role]["max_abs_diff"] <= 1e-4
    assert len(bundle.popular_items) > 100


def test_dssm_beats_popularity_twice_on_structured_data(posts_bundle: Path) -> None:
    metrics = json.loads((posts_bundle / "metrics.json").read_text())
    dssm, popular = metrics["retrieval"]["dssm"], metrics["retrieval"]["popularity"]
    assert dssm["users"] == popular["users"] > 1000
    assert dssm["recall@50"] >= 2 * popular["recall@50"], (dssm, popular)
    assert dssm["ndcg@10"] > popular["ndcg@10"]
    ranker, lr = metrics["ranker"], metrics["ranker_baselines"]["lr"]
    assert ranker["auc"] > lr["auc"] and ranker["logloss"] < lr["logloss"]


def test_bundle_encoder_round_trips_the_training_encoder(
    posts_bundle: Path, posts_dir: Path
) -> None:
    from service.features import FeatureEncoder
    from training.datasets import load_dataset
    from training.examples import HistoryIndex, feature_columns

    dataset = load_dataset("posts", posts_dir, seed=42)
    refit = FeatureEncoder.fit(
        dataset.schema, feature_columns(dataset, dataset.part("train"), HistoryIndex(dataset))
    )
    assert load_bundle(posts_bundle).encoder.to_dict() == json.loads(json.dumps(refit.to_dict()))


def test_bundle_embeds_raw_requests(posts_bundle: Path) -> None:
    bundle = load_bundle(posts_bundle)
    user = {
        "client_id": ["u1", "unknown-user"],
        "follow_topic_id": [["t1"], []],
        "all_topic_fav_7": [["t1:0.7", "t2:0.3"], None],
        "read_post_id": [["p1", "p2"], []],
        "client_type": ["ios", "smart-fridge"],
    }
    vecs = bundle.embed_users(user)
    assert vecs.shape == (2, bundle.manifest.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    scores = bundle.rank({**user, "post_id": ["p1", "p2"], "topic_id": ["t1", "t9"]})
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()


@pytest.fixture
def bundle_copy(posts_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(posts_bundle, tmp_path / posts_bundle.name))


def test_tampered_file_is_named(bundle_copy: Path) -> None:
    onnx = bundle_copy / "ranker.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"ranker\.onnx does not match its sha256"):
        load_bundle(bundle_copy)


def test_missing_file_is_named(bundle_copy: Path) -> None:
    (bundle_copy / "encoder.json").unlink()
    with pytest.raises(BundleError, match=r"encoder\.json is missing"):
        load_bundle(bundle_copy)


def write_sealed(bundle: Path, manifest: dict) -> None:
    """A manifest edited and sealed again (what a careless or hostile writer can do)."""
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_the_manifest_is_sealed_and_an_edit_is_refused(bundle_copy: Path) -> None:
    text = (bundle_copy / MANIFEST_FILE).read_text()
    manifest = json.loads(text)
    assert manifest["manifest_sha256"] == manifest_digest(manifest)
    manifest["metrics"]["ranker"]["auc"] = 0.999  # fake metrics
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"manifest\.json does not match its manifest_sha256"):
        load_bundle(bundle_copy)
    (bundle_copy / MANIFEST_FILE).write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(BundleError, match=r"manifest\.json is not a valid manifest"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/hostname", "sub/x.json", ".."])
def test_a_listed_file_outside_the_bundle_is_refused(bundle_copy: Path, name: str) -> None:
    (bundle_copy.parent / "outside.json").write_text("{}")
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    manifest["files"][name] = "0" * 64
    write_sealed(bundle_copy, manifest)
    with pytest.raises(BundleError, match="not a file of the bundle"):
        load_bundle(bundle_copy)


def test_a_symlink_out_of_the_bundle_is_refused(bundle_copy: Path) -> None:
    outside = bundle_copy.parent / "metrics.json"
    shutil.move(bundle_copy / "metrics.json", outside)
    (bundle_copy / "metrics.json").symlink_to(outside)
    with pytest.raises(BundleError, match=r"metrics\.json', not a file of the bundle"):
        load_bundle(bundle_copy)


def test_a_bundle_written_before_the_seal_still_loads(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    del manifest["manifest_sha256"]
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert load_bundle(bundle_copy).manifest.manifest_sha256 == ""


def test_unlisted_or_missing_manifest(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    del manifest["files"]["item_tower.onnx"]
    write_sealed(bundle_copy, manifest)
    with pytest.raises(BundleError, match=r"item_tower\.onnx is not listed"):
        load_bundle(bundle_copy)
    (bundle_copy / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        load_bundle(bundle_copy)


def test_deepfm_beats_logistic_regression_on_movielens(ml100k_dir: Path, tmp_path: Path) -> None:
    need_tensorflow()
    from training.config import TrainConfig
    from training.pipeline import train_bundle

    path = train_bundle(
        "movielens-100k", ml100k_dir, tmp_path, TrainConfig(), report=lambda _m: None
    )
    metrics = load_bundle(path).manifest.metrics
    deepfm, lr = metrics["ranker"], metrics["ranker_baselines"]["lr"]
    assert metrics["dataset"]["interactions"]["test"] == 10000
    assert deepfm["auc"] > lr["auc"] + 0.01, (deepfm, lr)
    assert (
        metrics["retrieval"]["dssm"]["recall@50"] > metrics["retrieval"]["popularity"]["recall@50"]
    )


def test_a_flag_changes_one_setting_of_a_config_file_section(tmp_path: Path) -> None:
    """`recsys train --config x.toml --ranker fm` keeps the file's other [ranker] settings."""
    need_tensorflow()
    from training.config import TrainConfig

    config = tmp_path / "train.toml"
    config.write_text("seed = 3\n[ranker]\nepochs = 7\ndnn = [64]\n[dssm]\nepochs = 2\n")
    cfg = TrainConfig.from_toml(config).updated({"ranker": {"name": "fm"}, "seed": 5})
    assert (cfg.ranker.name, cfg.ranker.epochs, cfg.ranker.dnn) == ("fm", 7, (64,))
    assert cfg.seed == 5 and cfg.dssm.epochs == 2
    assert cfg.ranker_for("fm").learning_rate == 3e-3  # the per-ranker default still applies
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        cfg.updated({"ranker": {"epoch": 1}})
