"""The bundle manifest: what a bundle holds and the hashes that prove it is intact."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ENCODER_FILE = "encoder.json"
METRICS_FILE = "metrics.json"
PARITY_FILE = "parity.json"
POPULAR_FILE = "popular.json"
USER_TOWER = "user_tower"
ITEM_TOWER = "item_tower"
RANKER = "ranker"
MODEL_ROLES = (USER_TOWER, ITEM_TOWER, RANKER)


@dataclass(frozen=True)
class ModelEntry:
    """One ONNX model of the bundle: its file, the features it reads and its output width."""

    file: str
    features: list[str]
    output_dim: int


@dataclass(frozen=True)
class Manifest:
    version: str
    created_at: str
    dataset: str
    schema_fingerprint: str
    embedding_dim: int
    opset: int
    ranker: str
    models: dict[str, ModelEntry]
    files: dict[str, str]  # file name -> sha256
    metrics: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    training_config: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["models"] = {role: ModelEntry(**entry) for role, entry in data["models"].items()}
        return cls(**data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
