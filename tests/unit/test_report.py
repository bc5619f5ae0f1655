"""The comparison report: spreads computed by hand, and the three files it writes."""

import json
from pathlib import Path

import pytest

from training.report import aggregate, paired_delta, spread, write_report


def test_spread_is_mean_and_sample_std() -> None:
    got = spread([0.70, 0.72, 0.74])
    assert got["mean"] == pytest.approx(0.72) and got["std"] == pytest.approx(0.02)
    assert got["values"] == [0.70, 0.72, 0.74]
    assert spread([0.5])["std"] == 0.0


def _ranking(model: str, seed: int, auc: float) -> dict:
    return {
        "model": model,
        "seed": seed,
        "auc": auc,
        "logloss": 0.6,
        "train_seconds": 10.0,
        "epochs": 5,
        "best_epoch": 3,
        "parameters": 1000,
        "parity_max_abs_diff": 1e-7 * seed,
        "onnx_ms": {"p50": 1.0 + seed, "p90": 2.0},
    }


def test_aggregate_groups_by_model_and_flattens_latency() -> None:
    runs = [_ranking("lr", 1, 0.7), _ranking("lr", 2, 0.8), _ranking("fm", 1, 0.75)]
    summary = aggregate(runs, ("auc", "logloss"))
    assert list(summary) == ["lr", "fm"]
    assert summary["lr"]["auc"]["mean"] == pytest.approx(0.75)
    assert summary["lr"]["onnx_ms_p50"]["values"] == [2.0, 3.0]
    assert summary["lr"]["parity_max_abs_diff"] == pytest.approx(2e-7)


def test_paired_delta_is_per_seed() -> None:
    runs = [_ranking("lr", 1, 0.70), _ranking("lr", 2, 0.80)]
    runs += [_ranking("deepfm", 1, 0.72), _ranking("deepfm", 2, 0.83)]
    delta = paired_delta(runs, "deepfm", "lr", "auc")
    assert delta["values"] == pytest.approx([0.02, 0.03])
    assert paired_delta(runs, "lr", "lr", "auc") is None
    assert paired_delta(runs, "deepfm", "fm", "auc") is None


def test_write_report_writes_markdown_json_and_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the chart needs the 'train' extra")
    retrieval = [
        {
            "model": m,
            "seed": 1,
            "recall@10": r,
            "recall@50": 2 * r,
            "ndcg@10": r / 2,
            "hit@10": 2 * r,
            "train_seconds": 1.0,
        }
        for m, r in (("dssm", 0.2), ("bpr", 0.15), ("popularity", 0.1))
    ]
    inputs = {
        "command": "recsys compare --dataset toy",
        "dataset": {
            "name": "toy",
            "users": 3,
            "items": 4,
            "positive_rate": 0.5,
            "interactions": {"train": 8, "val": 1, "test": 1},
        },
        "label": "rating >= 4",
        "split": {"method": "random", "ratios": [0.8, 0.1, 0.1]},
        "ranker_features": ["u", "i"],
        "crosses": {"u_x_i": ["u", "i"]},
        "seeds": [1, 2],
        "latency_rows": 200,
        "latency_runs": 10,
        "rankers": {"lr": {"epochs": 50, "patience": 3, "batch_size": 1024}},
        "validation_k": 50,
    }
    runs = [_ranking("lr", 1, 0.7), _ranking("lr", 2, 0.8)]
    paths = write_report(tmp_path, "toy", inputs, runs, retrieval)
    assert [p.name for p in paths] == ["compare-toy.json", "compare-toy.md", "compare-toy.png"]
    doc = json.loads(paths[0].read_text())
    assert doc["ranking"]["summary"]["lr"]["auc"]["mean"] == pytest.approx(0.75)
    assert len(doc["ranking"]["runs"]) == 2 and doc["seeds"] == [1, 2]
    markdown = paths[1].read_text()
    assert "| lr | 0.7500 ± 0.0707 | - |" in markdown
    assert "| dssm | 0.2000 ± 0.0000 |" in markdown
    assert "u_x_i = u x i" in markdown and "recsys compare --dataset toy" in markdown
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
