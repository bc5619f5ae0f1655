"""MovieLens 100K from RecBole atomic files: ``ml-100k.inter``, ``.user``, ``.item``.

The files are never part of this project (GroupLens forbids redistribution); the loader
reads any folder that holds them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.datasets.base import Dataset, DatasetConfig, DatasetError, assign_split

FILES = {"inter": "ml-100k.inter", "user": "ml-100k.user", "item": "ml-100k.item"}


def read_atomic(path: Path) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, header cells ``name:type``; all read as strings."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def load(config: DatasetConfig, data_dir: Path, seed: int) -> Dataset:
    missing = [f for f in FILES.values() if not (data_dir / f).is_file()]
    if missing:
        raise DatasetError(f"{data_dir}: MovieLens 100K atomic files {missing} not found")
    threshold = float(config.options.get("positive_rating", 4))
    inter = read_atomic(data_dir / FILES["inter"])
    interactions = pd.DataFrame(
        {
            "user_id": inter["user_id"],
            "item_id": inter["item_id"],
            "ts": inter["timestamp"].astype(float).astype("int64"),
            "label": (inter["rating"].astype(float) >= threshold).astype("int8"),
        }
    )
    interactions["split"] = assign_split(
        interactions, config.split_method, config.split_ratios, seed
    )
    users = read_atomic(data_dir / FILES["user"])[["user_id", "age", "gender", "occupation"]]
    raw_items = read_atomic(data_dir / FILES["item"])
    items = pd.DataFrame(
        {
            "item_id": raw_items["item_id"],
            "release_year": raw_items["release_year"],
            "genres": raw_items["class"].str.split(),
        }
    )
    return Dataset(config.schema, users, items, interactions)
