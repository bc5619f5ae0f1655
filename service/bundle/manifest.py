"""The bundle manifest: what a bundle holds and the hashes that prove it is intact.

Every file is listed with its sha256, and the manifest itself carries ``manifest_sha256``: the
sha256 of its own canonical JSON without that field, so a truncated or edited manifest (fake
metrics, a changed file list) is refused like a changed file. Listed files are plain names
inside the bundle folder. A hash without a key proves integrity, not origin: whoever may write
into the bundles root is trusted, which is why reloads are confined to it
(``RECSYS_BUNDLES_ROOT``). Bundles written before the field existed have no
``manifest_sha256``; they load (their files are still verified) with a warning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
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
    manifest_sha256: str = ""  # empty in bundles written before it existed

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def sealed(self) -> Manifest:
        """This manifest with ``manifest_sha256`` set to the hash of its content."""
        return replace(self, manifest_sha256=manifest_digest(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["models"] = {role: ModelEntry(**entry) for role, entry in data["models"].items()}
        return cls(**data)


def manifest_digest(data: dict[str, Any]) -> str:
    """sha256 of a manifest's canonical JSON (sorted keys, no spaces), ``manifest_sha256``
    left out."""
    content = {k: v for k, v in data.items() if k != "manifest_sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
