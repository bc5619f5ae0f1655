"""Training configuration: defaults in code, overrides from a TOML file or flags."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from training.models.dssm import DSSMConfig
from training.models.rankers import RankerConfig


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    ranker: RankerConfig = field(default_factory=RankerConfig)
    dssm: DSSMConfig = field(default_factory=DSSMConfig)
    baselines: tuple[str, ...] = ("lr",)
    eval_ks: tuple[int, ...] = (10, 50, 100)
    validation_k: int = 50
    opset: int = 17
    parity_rows: int = 1000
    parity_tolerance: float = 1e-4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Overrides on top of the defaults; unknown keys are an error, not ignored."""
        return _apply(cls(), data, "train")

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
        else:
            changes[key] = type(current)(value)
    return replace(obj, **changes)
