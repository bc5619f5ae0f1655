"""Shared fixtures. Bundles are trained once per session on real (synthetic or MovieLens)
data; tests that need TensorFlow skip when the ``train`` extra is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ML100K_DIR = ROOT.parent / "shared" / "data" / "ml-100k"


def need_tensorflow() -> None:
    pytest.importorskip("tensorflow", reason="needs the 'train' extra (TensorFlow)")
    pytest.importorskip("tf2onnx", reason="needs the 'train' extra (tf2onnx)")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    if not (ML100K_DIR / "ml-100k.inter").is_file():
        pytest.skip(f"MovieLens 100K is not at {ML100K_DIR} (licensed data, not in the project)")
    return ML100K_DIR


@pytest.fixture(scope="session")
def posts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic ``posts`` data set (what `recsys data synth` writes)."""
    from training.datasets.posts import SynthConfig, write

    out = tmp_path_factory.mktemp("posts")
    write(SynthConfig(), out)
    return out


@pytest.fixture(scope="session")
def posts_bundle(posts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained with the default settings on the default ``posts`` data."""
    need_tensorflow()
    from training.config import TrainConfig
    from training.pipeline import train_bundle

    return train_bundle(
        "posts",
        posts_dir,
        tmp_path_factory.mktemp("bundles"),
        TrainConfig(),
        report=lambda _msg: None,
    )
