"""A data set as the trainer sees it: users, items, labelled interactions with a split."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from service.features import Feature, FeatureSchema

SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The data files are missing or malformed."""


@dataclass(frozen=True)
class DatasetConfig:
    """A data set's config file: schema, loader name and options, split protocol, and the
    features the rankers read (``[ranking] features``; empty: every schema feature)."""

    schema: FeatureSchema
    loader: str
    default_dir: str
    split_method: str
    split_ratios: tuple[float, float, float]
    options: dict[str, Any]
    ranker_features: tuple[str, ...] = ()

    @classmethod
    def load(cls, name: str) -> DatasetConfig:
        """Read ``training/configs/<name>.toml`` (or a path to any such file)."""
        path = Path(name)
        if path.suffix != ".toml":
            path = Path(str(resources.files("training") / "configs" / f"{name}.toml"))
        if not path.is_file():
            known = sorted(p.stem for p in path.parent.glob("*.toml"))
            raise DatasetError(f"unknown data set {name!r}; known: {known}")
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        data = dict(raw["data"])
        ratios = tuple(raw["split"]["ratios"])
        if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-6:
            raise DatasetError(f"{path}: split ratios must be three numbers summing to 1")
        schema = FeatureSchema.from_dict(raw["schema"])
        ranker_features = tuple(raw.get("ranking", {}).get("features", ()))
        unknown = sorted(set(ranker_features) - {f.name for f in schema.features})
        if unknown:
            raise DatasetError(f"{path}: [ranking] features {unknown} are not in the schema")
        return cls(
            schema=schema,
            loader=data.pop("loader"),
            default_dir=data.pop("default_dir"),
            split_method=raw["split"]["method"],
            split_ratios=ratios,  # type: ignore[arg-type]
            options=data,
            ranker_features=ranker_features,
        )


@dataclass
class Dataset:
    """``interactions`` has the user and item keys, ``ts``, ``label`` (0/1), the context
    features and ``split`` (train/val/test); ``users`` and ``items`` hold the profile and
    catalog features, one row per key."""

    schema: FeatureSchema
    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    ranker_feature_names: tuple[str, ...] = ()
    split_method: str = "time"  # how ``split`` was cut: "time" or "random"

    def part(self, split: str) -> pd.DataFrame:
        return self.interactions[self.interactions["split"] == split]

    def positives_split_per_user(self, ratios: tuple[float, float, float], seed: int) -> Dataset:
        """The full-ranking protocol's data (RecBole's ``group_by: user``): positives only,
        each user's positives split at random by ``ratios``."""
        positives = self.interactions[self.interactions["label"] == 1].reset_index(drop=True)
        positives["split"] = assign_split_per_user(positives, self.schema.user_key, ratios, seed)
        return replace(self, interactions=positives, split_method="random")

    def ranker_features(self) -> list[Feature]:
        """What the rankers read: the config's ``[ranking] features``, else every feature."""
        if not self.ranker_feature_names:
            return list(self.schema.features)
        return [self.schema[name] for name in self.ranker_feature_names]

    def summary(self) -> dict[str, Any]:
        counts = self.interactions["split"].value_counts()
        return {
            "users": len(self.users),
            "items": len(self.items),
            "interactions": {s: int(counts.get(s, 0)) for s in SPLITS},
            "positive_rate": round(float(self.interactions["label"].mean()), 4),
        }


def split_counts(total: int, ratios: Sequence[float]) -> list[int]:
    """How many of ``total`` rows go to each part, as RecBole splits a user's records:
    every part but the first rounds down, the first takes the rest; then, while the
    first keeps more than one row, a later part whose share is between 0 and 1 row gets
    one (so a user with 2 positives has 1 in train and 1 in test, none in validation)."""
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def assign_split_per_user(
    interactions: pd.DataFrame, user_key: str, ratios: tuple[float, float, float], seed: int
) -> pd.Series:
    """Each user's rows shuffled and cut by ``split_counts`` (RecBole's ``RS`` split with
    ``group_by: user``): every user with two or more rows has some held out."""
    order = np.random.default_rng(seed).permutation(len(interactions))
    users = interactions[user_key].to_numpy()[order]
    by_user = np.argsort(users, kind="stable")  # keeps the shuffled order within a user
    grouped, keys = order[by_user], users[by_user]
    labels = np.empty(len(interactions), dtype=object)
    for rows in np.split(grouped, np.flatnonzero(keys[1:] != keys[:-1]) + 1):
        cuts = np.cumsum(split_counts(len(rows), ratios))[:-1]
        for name, part in zip(SPLITS, np.split(rows, cuts), strict=True):
            labels[part] = name
    return pd.Series(labels, index=interactions.index, name="split")


def assign_split(
    interactions: pd.DataFrame, method: str, ratios: tuple[float, float, float], seed: int
) -> pd.Series:
    """``random``: a seeded permutation; ``time``: a global cut on ``ts`` (ties by row order)."""
    n = len(interactions)
    if method == "random":
        order = np.random.default_rng(seed).permutation(n)
    elif method == "time":
        order = np.argsort(interactions["ts"].to_numpy(), kind="stable")
    else:
        raise DatasetError(f"split method must be 'random' or 'time', not {method!r}")
    labels = np.empty(n, dtype=object)
    cut1 = round(n * ratios[0])
    cut2 = round(n * (ratios[0] + ratios[1]))
    labels[order[:cut1]] = "train"
    labels[order[cut1:cut2]] = "val"
    labels[order[cut2:]] = "test"
    return pd.Series(labels, index=interactions.index, name="split")
