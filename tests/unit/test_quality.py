"""`recsys quality`'s logic on the fakes: users replayed through the real recommender, and
the figures computed from the answers by the offline metric definitions."""

from __future__ import annotations

import numpy as np
import pytest

from service.metrics import Metrics
from service.online.domain import Diversity
from service.online.recommender import Recommender
from training.evaluate import ranked_list_metrics, ranking_metrics, top_k_excluding
from training.quality import measure
from training.quality.arms import diversity_arms, retrieval_arms
from training.quality.replay import EvalUser, replay


def test_ranked_lists_are_scored_like_the_offline_full_ranking():
    ranked = [np.array([3, 1, 2]), np.array([0])]  # the second list is shorter than K
    positives = [np.array([1, 5]), np.array([4])]
    got = ranked_list_metrics(ranked, positives, (1, 2, 3))
    assert got["recall@1"] == 0 and got["recall@2"] == 0.25 and got["hit@3"] == 0.5
    assert got["ndcg@2"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)) / 2, abs=1e-5)
    scores = np.array([[0.0, 0.8, 0.7, 0.9, 0.1, 0.2], [0.9, 0.1, 0.3, 0.1, 0.6, 0.1]])
    seen = [np.array([4, 5]), np.array([1, 3])]
    offline = ranking_metrics(lambda rows: scores[rows], 2, seen, positives, (1, 3))
    assert offline == ranked_list_metrics(list(top_k_excluding(scores, seen, 3)), positives, (1, 3))


def test_replayed_answers_give_candidates_final_lists_and_diversity(
    index, store, model, make_settings
):
    recommender = Recommender(index, store, make_settings(), Metrics())
    ids = list(model.items.item_ids())
    users = [EvalUser(f"u{n}", {}, ids[n : n + 3]) for n in range(4)]
    row_of = {item_id: row for row, item_id in enumerate(ids)}
    try:
        arm = next(a for a in retrieval_arms({"two_tower": {"two_tower": 1.0}}, 50) if a.k == 50)
        answers = replay(recommender, model, arm, users)
        cosine = [measure.two_tower_order(a.items) for a in answers]
        for user, answer, ordered in zip(users, answers, cosine, strict=True):
            assert answer.user_id == user.user_id and not set(user.exclude) & {
                i.item_id for i in answer.items
            }
            scores = [i.retrieval_score for i in ordered]
            assert scores == sorted(scores, reverse=True)
        # the positives of each user are its answer's cosine head: recall 1 in that order
        positives = [np.array([row_of[i.item_id] for i in o[:5]]) for o in cosine]
        got = measure.list_metrics(answers, positives, row_of, (10,), measure.two_tower_order)
        assert got["recall@10"] == 1.0 and got["ndcg@10"] == 1.0 and got["users"] == 4
        assert measure.source_shares(answers) == {"for_you": 1.0}
        assert measure.failures(answers) == {}
        plain, mmr = diversity_arms({"two_tower": 1.0}, 40, [0.2], [], "topic")
        assert mmr.diversity == Diversity(mmr_weight=0.2)
        vectors = index.vectors(model.version, ids)
        spread = measure.intra_list_diversity(replay(recommender, model, mmr, users), vectors, 10)
        assert spread > measure.intra_list_diversity(
            replay(recommender, model, plain, users), vectors, 10
        )
    finally:
        recommender.close()
