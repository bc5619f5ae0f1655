import math

import numpy as np
import pytest

from training.evaluate import auc, logloss, popularity_metrics, retrieval_metrics, top_k_excluding


def test_auc_counts_pairs_and_ties() -> None:
    # pairs (pos, neg): (0.9,0.1)=1 (0.9,0.5)=1 (0.5,0.1)=1 (0.5,0.5)=0.5 -> 3.5/4
    assert auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)
    assert auc([0, 1], [0.2, 0.8]) == 1.0
    assert auc([1, 0], [0.2, 0.8]) == 0.0
    with pytest.raises(ValueError):
        auc([1, 1], [0.1, 0.2])


def test_logloss_by_hand() -> None:
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert logloss([1, 0], [0.8, 0.4]) == pytest.approx(expected)


def test_top_k_excludes_seen_items() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    top = top_k_excluding(scores, [np.array([0]), np.array([], dtype=int)], 2)
    assert top.tolist() == [[1, 2], [3, 2]]


def test_retrieval_metrics_by_hand() -> None:
    users = np.eye(2, dtype=np.float32)
    items = np.array([[1, 0], [0.9, 0.1], [0.5, 0.5], [0, 1]], dtype=np.float32)
    # user 0 ranks items 0,1,2,3; item 0 is seen, so the list is 1,2,3; positives {2, 3}
    # user 1 ranks 3,2,1,0; positives {0}; user 2 has no positives and is skipped
    m = retrieval_metrics(
        np.vstack([users, users[:1]]),
        items,
        seen=[np.array([0]), np.array([], dtype=int), np.array([], dtype=int)],
        positives=[np.array([2, 3]), np.array([0]), np.array([], dtype=int)],
        ks=(1, 2, 3),
    )
    assert m["users"] == 2
    assert m["recall@1"] == 0.0
    assert m["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["hit@2"] == pytest.approx(0.5)
    ndcg_u0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@2"] == pytest.approx(ndcg_u0 / 2, abs=1e-5)
    assert m["recall@3"] == pytest.approx((1.0 + 0) / 2)


def test_popularity_ranks_the_same_list_for_everyone() -> None:
    pop = np.array([5.0, 3.0, 1.0])
    m = popularity_metrics(
        pop, [np.array([0]), np.array([], dtype=int)], [np.array([1]), np.array([2])], ks=(1,)
    )
    assert m["recall@1"] == pytest.approx(0.5)  # user 0 gets item 1, user 1 gets item 0
