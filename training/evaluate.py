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
    totals = _Totals(ks)
    for start in range(0, n_users, chunk):
        rows = np.arange(start, min(start + chunk, n_users))
        top = top_k_excluding(score_rows(rows), [seen[r] for r in rows], max(ks))
        for local, row in enumerate(rows):
            totals.add(top[local], positives[row])
    return totals.result()


def ranked_list_metrics(
    ranked: Sequence[np.ndarray], positives: Sequence[np.ndarray], ks: Sequence[int]
) -> dict[str, float]:
    """The same metrics over lists someone else ranked (e.g. the service's answers):
    ``ranked[u]`` item indices best first, of any length (a list shorter than K misses the
    rest of K)."""
    totals = _Totals(ks)
    for top, pos in zip(ranked, positives, strict=True):
        totals.add(np.asarray(top), pos)
    return totals.result()


class _Totals:
    """Sums of Recall@K, HitRate@K and NDCG@K over users with held-out positives."""

    def __init__(self, ks: Sequence[int]) -> None:
        self.ks, self.users = tuple(ks), 0
        self.sums: dict[str, float] = {}
        self.discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))

    def add(self, top: np.ndarray, pos: np.ndarray) -> None:
        if len(pos) == 0:
            return
        self.users += 1
        hits = np.isin(top, pos)
        for k in self.ks:
            h = hits[:k]
            idcg = self.discounts[: min(len(pos), k)].sum()
            self._add(f"recall@{k}", h.sum() / len(pos))
            self._add(f"hit@{k}", float(h.any()))
            self._add(f"ndcg@{k}", (self.discounts[: len(h)] * h).sum() / idcg)

    def _add(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + value

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {
            name: round(float(total) / max(self.users, 1), 5)
            for name, total in sorted(self.sums.items())
        }
        out["users"] = self.users
        return out
