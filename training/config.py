"""Training configuration: defaults in code, overrides from a TOML file or flags."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from training.bpr import BPRConfig
from training.models.dssm import DSSMConfig
from training.models.ranker_config import RankerConfig


def _default_ranker_overrides() -> dict[str, dict[str, Any]]:
    # Adam's step size per ranker, by validation AUC on MovieLens-100K (docs/rankers.md): a
    # linear model at 1e-3 was still improving after 40 epochs; FM and AFM peak higher at 3e-3.
    return {
        "lr": {"learning_rate": 1e-2},
        "fm": {"learning_rate": 3e-3},
        "afm": {"learning_rate": 3e-3},
    }


@dataclass(frozen=True)
class TrainConfig:
    """``ranker`` holds the settings every ranker shares; ``ranker_overrides[name]`` changes
    some of them for one ranker (TOML: ``[ranker_overrides.lr] learning_rate = 0.01``)."""

    seed: int = 42
    ranker: RankerConfig = field(default_factory=RankerConfig)
    ranker_overrides: dict[str, dict[str, Any]] = field(default_factory=_default_ranker_overrides)
    dssm: DSSMConfig = field(default_factory=DSSMConfig)
    bpr: BPRConfig = field(default_factory=BPRConfig)  # `recsys compare`'s retrieval baseline
    baselines: tuple[str, ...] = ("lr",)
    eval_ks: tuple[int, ...] = (10, 50, 100)
    validation_k: int = 50
    opset: int = 17
    parity_rows: int = 1000
    parity_tolerance: float = 1e-4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ranker_for(self, name: str) -> RankerConfig:
        """The settings of ranker ``name``: the shared ones with its overrides applied."""
        base = replace(self.ranker, name=name)
        return _apply(base, self.ranker_overrides.get(name, {}), f"ranker_overrides.{name}")

    def updated(self, overrides: dict[str, Any]) -> TrainConfig:
        """These settings with ``overrides`` merged in key by key: a section such as
        ``{"ranker": {"name": "fm"}}`` changes that setting and keeps the section's others."""
        return _apply(self, overrides, "train")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Overrides on top of the defaults; unknown keys are an error, not ignored."""
        return cls().updated(data)

    @classmethod
    def from_toml(cls, path: Path) -> TrainConfig:
        with open(path, "rb") as fh:
            return cls.from_dict(tomllib.load(fh))


def _apply(obj: Any, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(obj)}
    changes = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{where}: unknown setting {key!r}; known: {sorted(known)}")
        current = getattr(obj, key)
        if hasattr(current, "__dataclass_fields__"):
            changes[key] = _apply(current, value, f"{where}.{key}")
        elif isinstance(current, tuple):
            changes[key] = tuple(value)
        elif key == "ranker_overrides":
            for name, override in value.items():  # fail on a bad key now, not mid-training
                _apply(RankerConfig(), override, f"{where}.{key}.{name}")
            changes[key] = {**current, **{n: dict(o) for n, o in value.items()}}
        else:
            changes[key] = type(current)(value)
    return replace(obj, **changes)
