"""Versioned model bundles: manifest, verification, ONNX sessions."""

from service.bundle.loader import Bundle, BundleError, load_bundle, read_manifest, verify_files
from service.bundle.manifest import Manifest, ModelEntry

__all__ = [
    "Bundle",
    "BundleError",
    "Manifest",
    "ModelEntry",
    "load_bundle",
    "read_manifest",
    "verify_files",
]
