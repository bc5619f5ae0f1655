"""Data sources: each a config file in ``training/configs`` plus a loader."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from training.datasets import movielens, posts
from training.datasets.base import SPLITS, Dataset, DatasetConfig, DatasetError

LOADERS = {"posts": posts.load, "movielens": movielens.load}


def load_dataset(
    name: str, data_dir: Path | None = None, seed: int = 42, split: str | None = None
) -> Dataset:
    """Load a data set by config name (``posts``, ``movielens-100k``) or config path;
    ``split`` ("time" or "random") overrides the config's split method."""
    config = DatasetConfig.load(name)
    if split is not None:
        config = replace(config, split_method=split)
    if config.loader not in LOADERS:
        raise DatasetError(f"config {name!r}: unknown loader {config.loader!r}")
    dataset = LOADERS[config.loader](config, Path(data_dir or config.default_dir), seed)
    dataset.ranker_feature_names = config.ranker_features
    dataset.split_method = config.split_method
    return dataset


__all__ = ["SPLITS", "Dataset", "DatasetConfig", "DatasetError", "load_dataset"]
