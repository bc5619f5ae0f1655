"""Builders shared by the vector index tests and benchmark: structured vectors, recall, ports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.index import SearchHit


def clustered_unit_vectors(
    n: int, dim: int, *, clusters: int = 64, spread: float = 0.35, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`[n, dim]` unit vectors around `clusters` random centres, and `[clusters, dim]` centres.

    Structured like trained item embeddings (tight neighbourhoods), unlike isotropic Gaussian
    noise, on which every ANN index looks bad and no recall figure means anything.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    vectors = centres[labels] + spread * rng.normal(size=(n, dim)) / np.sqrt(dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), centres.astype(np.float32)


def queries_near(centres: np.ndarray, n: int, *, spread: float = 0.35, seed: int = 1) -> np.ndarray:
    """`[n, dim]` query vectors drawn around the given centres, like users of those clusters."""
    rng = np.random.default_rng(seed)
    dim = centres.shape[1]
    picked = centres[rng.integers(0, len(centres), n)]
    return (picked + spread * rng.normal(size=(n, dim)) / np.sqrt(dim)).astype(np.float32)


def recall(found: Sequence[SearchHit], truth: Sequence[SearchHit]) -> float:
    """Share of the true top-k ids that the approximate search returned."""
    if not truth:
        return 1.0
    return len({h.item_id for h in found} & {h.item_id for h in truth}) / len(truth)
