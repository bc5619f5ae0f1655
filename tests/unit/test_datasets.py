import numpy as np
import pandas as pd
import pytest

from training.datasets import DatasetError, load_dataset
from training.datasets.base import assign_split
from training.datasets.posts import SynthConfig, generate, latent_structure
from training.evaluate import auc
from training.examples import HistoryIndex, feature_columns


def test_random_split_is_seeded_and_sized() -> None:
    frame = pd.DataFrame({"ts": np.arange(1000)})
    a = assign_split(frame, "random", (0.8, 0.1, 0.1), seed=1)
    assert (a == assign_split(frame, "random", (0.8, 0.1, 0.1), seed=1)).all()
    assert not (a == assign_split(frame, "random", (0.8, 0.1, 0.1), seed=2)).all()
    assert a.value_counts().to_dict() == {"train": 800, "val": 100, "test": 100}


def test_time_split_puts_the_future_in_test() -> None:
    frame = pd.DataFrame({"ts": np.random.default_rng(0).permutation(100)})
    split = assign_split(frame, "time", (0.8, 0.1, 0.1), seed=0)
    assert frame["ts"][split == "train"].max() < frame["ts"][split == "val"].min()
    assert frame["ts"][split == "val"].max() < frame["ts"][split == "test"].min()


def test_synthetic_posts_are_reproducible_and_structured() -> None:
    cfg = SynthConfig(users=300, items=200, impressions_per_user=30)
    users, items, inter = generate(cfg)
    again = generate(cfg)[2]
    pd.testing.assert_frame_equal(inter, again)
    assert set(inter["client_type"]) <= {"android", "ios", "web"}
    assert all(":" in pair for favs in users["all_topic_fav_7"] for pair in favs)
    assert len(items["post_vec"][0]) == cfg.vector_dim
    # clicks follow the hidden affinity: the true logit separates them well
    latent = latent_structure(cfg, np.random.default_rng(cfg.seed))
    u = inter["client_id"].str[1:].astype(int).to_numpy()
    i = inter["post_id"].str[1:].astype(int).to_numpy()
    assert auc(inter["label"], latent.affinity[u, i]) > 0.75


def test_history_uses_only_earlier_training_positives(tmp_path) -> None:
    from training.datasets.posts import write

    write(SynthConfig(users=200, items=100, impressions_per_user=20), tmp_path)
    ds = load_dataset("posts", tmp_path, seed=0)
    history = HistoryIndex(ds)
    test = ds.part("test").head(300)
    cols = feature_columns(ds, test, history)
    train = ds.part("train")
    train_pos = set(zip(train["client_id"], train["post_id"], strict=True)) & set(
        zip(
            train.loc[train["label"] == 1, "client_id"],
            train.loc[train["label"] == 1, "post_id"],
            strict=True,
        )
    )
    nonempty = 0
    for (user, ts), hist in zip(
        zip(test["client_id"], test["ts"], strict=True), cols["read_post_id"], strict=True
    ):
        earlier = train[(train["client_id"] == user) & (train["label"] == 1) & (train["ts"] < ts)]
        assert hist == earlier.sort_values("ts", kind="stable")["post_id"].tolist()[-30:]
        assert all((user, item) in train_pos for item in hist)
        nonempty += bool(hist)
    assert nonempty > 100


def test_missing_files_say_how_to_make_them(tmp_path) -> None:
    with pytest.raises(DatasetError, match="recsys data synth"):
        load_dataset("posts", tmp_path)
    with pytest.raises(DatasetError, match="MovieLens"):
        load_dataset("movielens-100k", tmp_path)
    with pytest.raises(DatasetError, match="unknown data set"):
        load_dataset("nope", tmp_path)


def test_movielens_protocol(ml100k_dir) -> None:
    ds = load_dataset("movielens-100k", ml100k_dir, seed=42)
    summary = ds.summary()
    assert summary["interactions"] == {"train": 80000, "val": 10000, "test": 10000}
    assert summary["positive_rate"] == pytest.approx(0.5537, abs=1e-3)  # rating >= 4
    assert ds.items.set_index("item_id").loc["1", "genres"] == ["Animation", "Children's", "Comedy"]
