"""Write a bundle atomically: files into a hidden temp folder, manifest last (sealed with its
own ``manifest_sha256``), then rename.

A bundle is immutable once written: an existing version is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.bundle.manifest import MANIFEST_FILE, Manifest, sha256_file


def version_name(dataset: str, files: dict[str, str], now: datetime) -> str:
    """``<dataset>_<UTC stamp>_<content hash>``; letters, digits and "_" only, so the
    version can name its Milvus collection (``items_<version>``)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", dataset).strip("_").lower()
    content = hashlib.sha256("".join(sorted(files.values())).encode()).hexdigest()[:8]
    return f"{slug}_{now:%Y%m%d%H%M%S}_{content}"


class BundleWriter:
    """Collects files in a staging folder under ``out_dir``; ``commit`` makes the bundle."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        self.staging = self.out_dir / f".staging-{stamp}-{os.getpid()}"
        self.staging.mkdir()

    def path(self, name: str) -> Path:
        return self.staging / name

    def write_json(self, name: str, data: Any) -> None:
        self.path(name).write_text(json.dumps(data, indent=2, sort_keys=True))

    def commit(self, manifest: Manifest) -> Path:
        """Hash every staged file, name the version, write the manifest and rename into place."""
        files = {p.name: sha256_file(p) for p in sorted(self.staging.iterdir())}
        now = datetime.now(UTC)
        version = version_name(manifest.dataset, files, now)
        manifest = replace(
            manifest, version=version, created_at=now.isoformat(), files=files
        ).sealed()
        self.path(MANIFEST_FILE).write_text(manifest.to_json())
        target = self.out_dir / version
        if target.exists():
            raise FileExistsError(f"bundle {target} already exists; bundles are immutable")
        self.staging.rename(target)
        return target

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
