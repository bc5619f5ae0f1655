"""The figures a gated rollout compares: the candidate and the bundle it would replace,
scored on the same held-out data (the candidate's test split) with the same protocol.

`recsys train --baseline <serving bundle>` runs the baseline's ONNX models on the raw
columns of the candidate's test split (each bundle encodes them with its own encoder) and
writes both figures into the candidate's metrics under ``gate``. The service's reload then
only compares numbers (`service/online/gate.py`); it never needs the training data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.bundle.loader import BundleError, load_bundle
from service.features import EncodingError
from service.online.gate import GATE_METRICS
from training.evaluate import auc, retrieval_metrics
from training.retrieval_data import RetrievalData
from training.runs import LabelledSplits

AUC, RECALL = GATE_METRICS
RECALL_K = int(RECALL.split("@")[1])


class BaselineError(ValueError):
    """The baseline bundle cannot be scored on this data set (another schema, a bad bundle)."""


def baseline_figures(path: Path, splits: LabelledSplits, data: RetrievalData) -> dict[str, Any]:
    """The baseline bundle's ranker AUC and Recall@50 on the candidate's test split."""
    try:
        baseline = load_bundle(path)
        scores = baseline.rank(splits.columns["test"], len(splits.labels["test"]))
        users = baseline.embed_users(data.test.columns, len(data.test.user_ids))
        items = baseline.embed_items(data.item_columns, len(data.item_ids))
    except (BundleError, EncodingError, KeyError) as exc:
        raise BaselineError(f"baseline {path} cannot be scored on this data set: {exc}") from exc
    recall = retrieval_metrics(users, items, data.test.seen, data.test.positives, (RECALL_K,))
    return {
        "version": baseline.version,
        AUC: round(auc(splits.labels["test"], scores), 5),
        RECALL: recall[RECALL],
    }


def gate_section(
    baseline: dict[str, Any], candidate_auc: float, candidate_recall: float, data: RetrievalData
) -> dict[str, Any]:
    return {
        "data": "the candidate's test split",
        "users": len(data.test.user_ids),
        "baseline": baseline,
        "candidate": {AUC: candidate_auc, RECALL: candidate_recall},
    }
