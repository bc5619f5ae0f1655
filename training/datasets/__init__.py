"""Data sources: each a config file in ``training/configs`` plus a loader."""

from __future__ import annotations

from pathlib import Path

from training.datasets import movielens, posts
from training.datasets.base import SPLITS, Dataset, DatasetConfig, DatasetError

LOADERS = {"posts": posts.load, "movielens": movielens.load}


def load_dataset(name: str, data_dir: Path | None = None, seed: int = 42) -> Dataset:
    """Load a data set by config name (``posts``, ``movielens-100k``) or config path."""
    config = DatasetConfig.load(name)
    if config.loader not in LOADERS:
        raise DatasetError(f"config {name!r}: unknown loader {config.loader!r}")
    dataset = LOADERS[config.loader](config, Path(data_dir or config.default_dir), seed)
    dataset.ranker_feature_names = config.ranker_features
    dataset.split_method = config.split_method
    return dataset


__all__ = ["SPLITS", "Dataset", "DatasetConfig", "DatasetError", "load_dataset"]
