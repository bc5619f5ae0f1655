"""Load a model bundle for serving: verify every file, open the ONNX sessions, smoke-test.

Only onnxruntime and NumPy here: the service never imports TensorFlow.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.bundle.manifest import (
    ENCODER_FILE,
    FORMAT_VERSION,
    ITEM_TOWER,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_ROLES,
    PARITY_FILE,
    POPULAR_FILE,
    RANKER,
    USER_TOWER,
    Manifest,
    manifest_digest,
    sha256_file,
)
from service.bundle.onnx_model import OnnxModel
from service.features import Feature, FeatureEncoder
from service.features.encoder import Columns

REQUIRED_FILES = (ENCODER_FILE, METRICS_FILE, PARITY_FILE, POPULAR_FILE)
log = logging.getLogger(__name__)


class BundleError(RuntimeError):
    """The bundle is missing, incomplete, tampered with or does not run; names the file."""


@dataclass
class Bundle:
    """A verified, warmed bundle: the encoder and the three ONNX models."""

    path: Path
    manifest: Manifest
    encoder: FeatureEncoder
    models: dict[str, OnnxModel]
    popular_items: list[str]

    @property
    def version(self) -> str:
        return self.manifest.version

    def features(self, role: str) -> list[Feature]:
        schema = self.encoder.schema
        return [schema[name] for name in self.manifest.models[role].features]

    def run(self, role: str, columns: Columns, n: int | None = None) -> np.ndarray:
        """Encode raw columns for ``role`` and run its model: ``[n, output_dim]``."""
        arrays = self.encoder.encode(columns, self.features(role), n)
        return self.models[role].run(arrays)

    def embed_users(self, columns: Columns, n: int | None = None) -> np.ndarray:
        return self.run(USER_TOWER, columns, n)

    def embed_items(self, columns: Columns, n: int | None = None) -> np.ndarray:
        return self.run(ITEM_TOWER, columns, n)

    def rank(self, columns: Columns, n: int | None = None) -> np.ndarray:
        """Ranker probabilities, ``[n]``."""
        return self.run(RANKER, columns, n).reshape(-1)


def read_manifest(path: Path) -> Manifest:
    file = Path(path) / MANIFEST_FILE
    try:
        is_dir = Path(path).is_dir()
    except OSError as exc:  # a name the file system cannot hold (too long)
        raise BundleError(f"bundle {path}: {exc.strerror}") from None
    if not is_dir:
        raise BundleError(f"bundle {path}: not a directory")
    try:
        data = json.loads(file.read_text())
        manifest = Manifest.from_dict(data)
    except FileNotFoundError:
        raise BundleError(f"bundle {path}: {MANIFEST_FILE} is missing") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BundleError(
            f"bundle {path}: {MANIFEST_FILE} is not a valid manifest: {exc}"
        ) from None
    _check_digest(path, manifest, data)
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(
            f"bundle {path}: format {manifest.format_version}, this service reads {FORMAT_VERSION}"
        )
    return manifest


def _check_digest(path: Path, manifest: Manifest, data: dict[str, Any]) -> None:
    if not manifest.manifest_sha256:
        log.warning(
            "bundle %s: %s has no manifest_sha256 (written before it existed)", path, MANIFEST_FILE
        )
    elif manifest_digest(data) != manifest.manifest_sha256:
        raise BundleError(f"bundle {path}: {MANIFEST_FILE} does not match its manifest_sha256")


def _inside(path: Path, name: str) -> Path:
    """The listed file ``name``: a plain file name, inside the bundle folder."""
    file = Path(path) / name
    plain = isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..")
    if not plain or not file.resolve().is_relative_to(Path(path).resolve()):
        raise BundleError(
            f"bundle {path}: {MANIFEST_FILE} lists {name!r}, not a file of the bundle"
        )
    return file


def verify_files(path: Path, manifest: Manifest) -> None:
    """Every required file is listed, inside the bundle, present and matches its sha256."""
    model_files = [manifest.models[role].file for role in MODEL_ROLES if role in manifest.models]
    missing_roles = set(MODEL_ROLES) - set(manifest.models)
    if missing_roles:
        raise BundleError(f"bundle {path}: {MANIFEST_FILE} lists no {sorted(missing_roles)} model")
    for name in (*REQUIRED_FILES, *model_files):
        if name not in manifest.files:
            raise BundleError(f"bundle {path}: {name} is not listed in {MANIFEST_FILE}")
    for name, expected in manifest.files.items():
        file = _inside(path, name)
        if not file.is_file():
            raise BundleError(f"bundle {path}: {name} is missing")
        if sha256_file(file) != expected:
            raise BundleError(f"bundle {path}: {name} does not match its sha256 in {MANIFEST_FILE}")


def _read_json(path: Path, name: str) -> Any:
    try:
        return json.loads((path / name).read_text())
    except ValueError as exc:
        raise BundleError(f"bundle {path}: {name} is not valid JSON: {exc}") from None


def load_bundle(path: Path, intra_op_threads: int = 1) -> Bundle:
    """Verify and open a bundle, then run one smoke inference per model."""
    path = Path(path)
    manifest = read_manifest(path)
    verify_files(path, manifest)
    try:
        encoder = FeatureEncoder.from_dict(_read_json(path, ENCODER_FILE))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"bundle {path}: {ENCODER_FILE} is invalid: {exc}") from None
    if encoder.schema.fingerprint() != manifest.schema_fingerprint:
        raise BundleError(f"bundle {path}: {ENCODER_FILE} schema does not match the manifest")
    models = {}
    for role, entry in manifest.models.items():
        try:
            model = OnnxModel(path / entry.file, intra_op_threads)
        except Exception as exc:  # onnxruntime raises several unrelated types
            log.warning("bundle %s: %s does not load: %s", path, entry.file, exc)
            raise BundleError(
                f"bundle {path}: {entry.file} is not a model onnxruntime loads"
            ) from None
        features = [encoder.schema[name] for name in entry.features]
        expected = [spec.name for spec in encoder.input_specs(features)]
        if sorted(model.input_names) != sorted(expected):
            raise BundleError(
                f"bundle {path}: {entry.file} inputs {model.input_names} != schema {expected}"
            )
        models[role] = model
    bundle = Bundle(path, manifest, encoder, models, _read_json(path, POPULAR_FILE))
    smoke_test(bundle)
    return bundle


def smoke_test(bundle: Bundle) -> None:
    """Run every model on two unknown rows and check shapes and values."""
    dim = bundle.manifest.embedding_dim
    for role in (USER_TOWER, ITEM_TOWER):
        out = bundle.run(role, {}, n=2)
        if out.shape != (2, dim) or not np.isfinite(out).all():
            raise BundleError(f"bundle {bundle.path}: {role} smoke test gave shape {out.shape}")
        norms = np.linalg.norm(out, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-3):
            raise BundleError(f"bundle {bundle.path}: {role} outputs are not L2-normalized")
    scores = bundle.rank({}, n=2)
    if scores.shape != (2,) or not all(0.0 <= s <= 1.0 and math.isfinite(s) for s in scores):
        raise BundleError(f"bundle {bundle.path}: ranker smoke test gave {scores!r}")
