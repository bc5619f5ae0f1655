"""A data set as the trainer sees it: users, items, labelled interactions with a split."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from service.features import FeatureSchema

SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The data files are missing or malformed."""


@dataclass(frozen=True)
class DatasetConfig:
    """A data set's config file: schema, loader name and options, split protocol."""

    schema: FeatureSchema
    loader: str
    default_dir: str
    split_method: str
    split_ratios: tuple[float, float, float]
    options: dict[str, Any]

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
        return cls(
            schema=FeatureSchema.from_dict(raw["schema"]),
            loader=data.pop("loader"),
            default_dir=data.pop("default_dir"),
            split_method=raw["split"]["method"],
            split_ratios=ratios,  # type: ignore[arg-type]
            options=data,
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

    def part(self, split: str) -> pd.DataFrame:
        return self.interactions[self.interactions["split"] == split]

    def summary(self) -> dict[str, Any]:
        counts = self.interactions["split"].value_counts()
        return {
            "users": len(self.users),
            "items": len(self.items),
            "interactions": {s: int(counts.get(s, 0)) for s in SPLITS},
            "positive_rate": round(float(self.interactions["label"].mean()), 4),
        }


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
