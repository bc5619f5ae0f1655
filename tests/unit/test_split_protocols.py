"""The two split protocols: a random cut of all interactions (ranking) and RecBole's
per-user random split of the positives (full-ranking retrieval)."""

import numpy as np
import pandas as pd
import pytest

from service.features import FeatureSchema, SparseFeat
from training.datasets.base import Dataset, assign_split, assign_split_per_user, split_counts
from training.examples import HistoryIndex, feature_columns

RATIOS = (0.8, 0.1, 0.1)


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (1, [1, 0, 0]),  # nothing to hold out
        (2, [1, 0, 1]),  # test first: the last part gets the first spare row
        (3, [1, 1, 1]),
        (5, [3, 1, 1]),  # int(0.5) = 0, then one row each for test and validation
        (10, [8, 1, 1]),
        (19, [17, 1, 1]),  # int(1.9) = 1: validation and test round down, train takes the rest
        (25, [21, 2, 2]),
    ],
)
def test_split_counts_follow_recbole(total: int, expected: list[int]) -> None:
    assert split_counts(total, RATIOS) == expected
    assert sum(expected) == total


def _interactions(sizes: dict[str, int]) -> pd.DataFrame:
    users = [u for u, n in sizes.items() for _ in range(n)]
    return pd.DataFrame(
        {"user": users, "item": [f"i{k}" for k in range(len(users))], "label": 1, "ts": 0}
    )


def test_per_user_split_cuts_each_user_by_split_counts() -> None:
    sizes = {"a": 1, "b": 2, "c": 5, "d": 10, "e": 37}
    frame = _interactions(sizes)
    split = assign_split_per_user(frame, "user", RATIOS, seed=3)
    for user, n in sizes.items():
        got = split[frame["user"] == user].value_counts()
        assert [int(got.get(s, 0)) for s in ("train", "val", "test")] == split_counts(n, RATIOS)
    again = assign_split_per_user(frame, "user", RATIOS, seed=3)
    other = assign_split_per_user(frame, "user", RATIOS, seed=4)
    assert again.equals(split) and not other.equals(split)


def test_per_user_split_is_random_within_a_user() -> None:
    frame = _interactions({"a": 200})
    split = assign_split_per_user(frame, "user", RATIOS, seed=0)
    test_rows = np.flatnonzero(split.to_numpy() == "test")
    assert len(test_rows) == 20 and test_rows.min() < 100 < test_rows.max()


def test_positives_split_per_user_drops_negatives() -> None:
    frame = _interactions({"a": 10, "b": 10})
    frame["label"] = np.tile([1, 0], 10)
    schema = FeatureSchema(
        "s", "user", "item", (SparseFeat("user", "user"), SparseFeat("item", "item"))
    )
    dataset = Dataset(schema, pd.DataFrame({"user": ["a", "b"]}), pd.DataFrame(), frame)
    split = dataset.positives_split_per_user(RATIOS, seed=1)
    assert (split.interactions["label"] == 1).all() and len(split.interactions) == 10
    assert split.interactions.groupby("user")["split"].apply(set).map(len).min() == 3
    assert len(dataset.interactions) == 20  # the original is untouched


def test_random_split_of_interactions_is_global() -> None:
    frame = _interactions({"a": 50, "b": 50})
    split = assign_split(frame, "random", RATIOS, seed=0)
    assert split.value_counts().to_dict() == {"train": 80, "val": 10, "test": 10}


def _history_dataset(split_method: str) -> Dataset:
    schema = FeatureSchema.from_dict(
        {
            "name": "h",
            "user_key": "user",
            "item_key": "item",
            "features": [
                {"kind": "sparse", "name": "user", "side": "user"},
                {
                    "kind": "varlen",
                    "name": "hist",
                    "side": "user",
                    "maxlen": 5,
                    "from_events": True,
                },
                {"kind": "sparse", "name": "item", "side": "item"},
            ],
        }
    )
    frame = pd.DataFrame(
        {
            "user": ["a"] * 6,
            "item": ["i1", "i2", "i3", "i4", "i5", "i6"],
            "ts": [1, 2, 3, 4, 5, 6],
            "label": [1, 1, 0, 1, 1, 1],
            "split": ["train", "train", "train", "test", "train", "val"],
        }
    )
    return Dataset(
        schema, pd.DataFrame({"user": ["a"]}), pd.DataFrame({"item": []}), frame, (), split_method
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # time split: strictly earlier training positives
        ("time", [[], ["i1"], ["i1", "i2"], ["i1", "i2"], ["i1", "i2"], ["i1", "i2", "i5"]]),
        # random split: every training positive but the row's own item (as at evaluation)
        (
            "random",
            [
                ["i2", "i5"],
                ["i1", "i5"],
                ["i1", "i2", "i5"],
                ["i1", "i2", "i5"],
                ["i1", "i2"],
                ["i1", "i2", "i5"],
            ],
        ),
    ],
)
def test_history_mirrors_the_evaluation_state_of_the_split(method: str, expected: list) -> None:
    dataset = _history_dataset(method)
    history = HistoryIndex(dataset)
    assert history.mode == ("others" if method == "random" else "before")
    columns = feature_columns(dataset, dataset.interactions, history)
    assert columns["hist"] == expected  # never a held-out item (i4, i6), never the row's own
    assert history.latest(["a"], 5) == [["i1", "i2", "i5"]]
