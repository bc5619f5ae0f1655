"""Offline metrics: ranker AUC / LogLoss, retrieval Recall@K / NDCG@K / HitRate@K.

Retrieval is full ranking over all items with exact (NumPy) scores; each user's already
seen items are excluded before the top K is taken, and users without held-out positives
are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties at their mean rank."""
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative labels")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0  # 1-based mean rank of each tie group
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    probs = np.clip(np.asarray(probs, dtype=np.float64).reshape(-1), eps, 1 - eps)
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)))


def top_k_excluding(scores: np.ndarray, seen: Sequence[np.ndarray], k: int) -> np.ndarray:
    """``[users, k]`` item indices, best first, with each user's ``seen`` indices excluded."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    for row, items in enumerate(seen):
        scores[row, items] = -np.inf
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def retrieval_metrics(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    seen: Sequence[np.ndarray],
    positives: Sequence[np.ndarray],
    ks: Sequence[int] = (10, 50, 100),
    chunk: int = 1024,
) -> dict[str, float]:
    """Recall@K, HitRate@K and NDCG@K averaged over users.

    ``user_vecs [users, d]``, ``item_vecs [items, d]``; ``seen[u]`` and ``positives[u]``
    are item indices. Recall@K = hits / |positives| (RecBole's definition).
    """
    return ranking_metrics(
        lambda rows: user_vecs[rows] @ item_vecs.T, len(user_vecs), seen, positives, ks, chunk
    )


def popularity_metrics(
    popularity: np.ndarray,
    seen: Sequence[np.ndarray],
    positives: Sequence[np.ndarray],
    ks: Sequence[int] = (10, 50, 100),
) -> dict[str, float]:
    """The same metrics for "most popular unseen items" (one score per item for everyone)."""
    pop = np.asarray(popularity, dtype=np.float64)
    return ranking_metrics(
        lambda rows: np.tile(pop, (len(rows), 1)), len(seen), seen, positives, ks
    )


def ranking_metrics(score_rows, n_users, seen, positives, ks, chunk=1024) -> dict[str, float]:
    kmax = max(ks)
    sums: dict[str, float] = {}
    evaluated = 0
    for start in range(0, n_users, chunk):
        rows = np.arange(start, min(start + chunk, n_users))
        top = top_k_excluding(score_rows(rows), [seen[r] for r in rows], kmax)
        for local, row in enumerate(rows):
            pos = positives[row]
            if len(pos) == 0:
                continue
            evaluated += 1
            hits = np.isin(top[local], pos)
            for k in ks:
                h = hits[:k]
                sums[f"recall@{k}"] = sums.get(f"recall@{k}", 0.0) + h.sum() / len(pos)
                sums[f"hit@{k}"] = sums.get(f"hit@{k}", 0.0) + float(h.any())
                discounts = 1.0 / np.log2(np.arange(2, k + 2))
                idcg = discounts[: min(len(pos), k)].sum()
                sums[f"ndcg@{k}"] = sums.get(f"ndcg@{k}", 0.0) + (discounts * h).sum() / idcg
    out = {name: round(float(total) / max(evaluated, 1), 5) for name, total in sorted(sums.items())}
    out["users"] = evaluated
    return out
