"""The seed-003 ``posts`` data set: a synthetic generator with latent structure, and its loader.

Users have sparse topic preferences, topics have latent vectors, items belong to a topic
and have a popularity; impressions are what a recommender would have shown (half by
popularity, half by affinity) and a click follows affinity, popularity and the device.
A model that learns the structure ranks held-out clicks well above popularity; a model
that learns nothing does not. ``Latent`` keeps the truth so tests can compare a model
with the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.datasets.base import Dataset, DatasetConfig, DatasetError, assign_split

FILES = ("users.parquet", "items.parquet", "interactions.parquet")
CLIENT_TYPES = ("android", "ios", "web")
DAY = 86_400


@dataclass(frozen=True)
class SynthConfig:
    users: int = 3000
    items: int = 1500
    topics: int = 20
    impressions_per_user: int = 40
    profile_reads: int = 20
    latent_dim: int = 16
    vector_dim: int = 32
    days: int = 30
    no_profile_share: float = 0.3  # new users who declared no topics: only their reads tell
    seed: int = 7


def _sample_rows(rng: np.random.Generator, probs: np.ndarray, k: int) -> np.ndarray:
    """``k`` draws with replacement from each row's distribution: ``[rows, k]`` column indices.

    One ``searchsorted`` over all rows: row ``r``'s CDF is shifted by ``r`` so rows never mix.
    """
    rows, cols = probs.shape
    offset = np.arange(rows)[:, None]
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1) + offset
    u = rng.random((rows, k)) + offset
    flat = np.searchsorted(cdf.ravel(), u.ravel()).reshape(rows, k)
    return np.minimum(flat - offset * cols, cols - 1)


def _softmax_sample(rng: np.random.Generator, logits: np.ndarray, k: int) -> np.ndarray:
    return _sample_rows(rng, np.exp(logits - logits.max(axis=1, keepdims=True)), k)


@dataclass(frozen=True)
class Latent:
    """The hidden truth behind a generated data set (for oracle checks, never for training)."""

    item_topic: np.ndarray  # [items]
    item_vec: np.ndarray  # [items, vector_dim], unit rows
    log_pop: np.ndarray  # [items]
    affinity: np.ndarray  # [users, items]
    device: np.ndarray  # [users] index into CLIENT_TYPES

    def shown_probability(self) -> np.ndarray:
        """``[users, items]``: the impression policy's chance to show each item."""
        by_pop = np.exp(self.log_pop - self.log_pop.max())
        by_aff = np.exp(
            AFFINITY_SHARPNESS * (self.affinity - self.affinity.max(axis=1, keepdims=True))
        )
        return (POPULAR_SHARE * by_pop / by_pop.sum())[None, :] + (
            1 - POPULAR_SHARE
        ) * by_aff / by_aff.sum(axis=1, keepdims=True)

    def click_logit(self, users: np.ndarray, items: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        return (
            1.2 * self.affinity[users, items] + 0.6 * self.log_pop[items] + DEVICE_BIAS[ctx] - 2.5
        )


POPULAR_SHARE = 0.3  # impressions from a popularity policy; the rest follow affinity
AFFINITY_SHARPNESS = 1.0
DEVICE_BIAS = np.array([0.0, 0.2, -0.3])


def latent_structure(cfg: SynthConfig, rng: np.random.Generator) -> Latent:
    topic_vecs = rng.normal(size=(cfg.topics, cfg.latent_dim))
    topic_vecs /= np.linalg.norm(topic_vecs, axis=1, keepdims=True)
    topic_share = rng.dirichlet(np.full(cfg.topics, 2.0))
    item_topic = rng.choice(cfg.topics, size=cfg.items, p=topic_share)
    item_latent = topic_vecs[item_topic] + 0.35 * rng.normal(size=(cfg.items, cfg.latent_dim))
    log_pop = rng.normal(scale=0.7, size=cfg.items)
    projection = rng.normal(size=(cfg.latent_dim, cfg.vector_dim)) / np.sqrt(cfg.latent_dim)
    item_vec = item_latent @ projection + 0.3 * rng.normal(size=(cfg.items, cfg.vector_dim))
    item_vec /= np.linalg.norm(item_vec, axis=1, keepdims=True)
    pref = rng.dirichlet(np.full(cfg.topics, 0.15), size=cfg.users)
    user_latent = pref @ topic_vecs + 0.2 * rng.normal(size=(cfg.users, cfg.latent_dim))
    device = rng.choice(len(CLIENT_TYPES), size=cfg.users, p=[0.5, 0.3, 0.2])
    return Latent(item_topic, item_vec, log_pop, 4.0 * user_latent @ item_latent.T, device)


def generate(cfg: SynthConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Users, items and impressions (with ``label`` = clicked), reproducible from ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    latent = latent_structure(cfg, rng)
    item_topic = latent.item_topic

    profile = _softmax_sample(rng, latent.affinity + latent.log_pop, cfg.profile_reads)
    follows, favs = [], []
    for u in range(cfg.users):
        counts = np.bincount(item_topic[profile[u]], minlength=cfg.topics)
        top = np.flatnonzero(counts)[np.argsort(-counts[np.flatnonzero(counts)])]
        favs.append([f"t{t}:{counts[t] / counts.sum():.3f}" for t in top[:10]])
        followed = list(top[: rng.integers(1, 4)])
        if rng.random() < 0.3:
            followed.append(int(rng.integers(cfg.topics)))
        follows.append([f"t{t}" for t in dict.fromkeys(followed)])
    for u in np.flatnonzero(rng.random(cfg.users) < cfg.no_profile_share):
        follows[u], favs[u] = [], []

    k = cfg.impressions_per_user
    shown = _sample_rows(rng, latent.shown_probability(), k)  # [users, k]
    users_idx = np.repeat(np.arange(cfg.users), k)
    items_idx = shown.reshape(-1)
    ctx = np.where(
        rng.random(users_idx.size) < 0.8,
        latent.device[users_idx],
        rng.integers(3, size=users_idx.size),
    )
    clicked = rng.random(users_idx.size) < 1.0 / (
        1.0 + np.exp(-latent.click_logit(users_idx, items_idx, ctx))
    )
    ts = rng.integers(0, cfg.days * DAY, size=users_idx.size)

    users = pd.DataFrame(
        {
            "client_id": [f"u{u}" for u in range(cfg.users)],
            "follow_topic_id": follows,
            "all_topic_fav_7": favs,
        }
    )
    items = pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(cfg.items)],
            "topic_id": [f"t{t}" for t in item_topic],
            "post_vec": list(latent.item_vec.astype(np.float32)),
        }
    )
    interactions = pd.DataFrame(
        {
            "client_id": users["client_id"].to_numpy()[users_idx],
            "post_id": items["post_id"].to_numpy()[items_idx],
            "client_type": np.asarray(CLIENT_TYPES)[ctx],
            "ts": ts,
            "label": clicked.astype(np.int8),
        }
    ).sort_values("ts", kind="stable", ignore_index=True)
    return users, items, interactions


def write(cfg: SynthConfig, out: Path) -> dict[str, int]:
    """Generate and write the three parquet files; returns row counts."""
    users, items, interactions = generate(cfg)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(FILES, (users, items, interactions), strict=True):
        frame.to_parquet(out / name, index=False)
    return {
        "users": len(users),
        "items": len(items),
        "interactions": len(interactions),
        "clicks": int(interactions["label"].sum()),
    }


def load(config: DatasetConfig, data_dir: Path, seed: int) -> Dataset:
    missing = [name for name in FILES if not (data_dir / name).is_file()]
    if missing:
        raise DatasetError(
            f"{data_dir}: {missing} not found; "
            f"generate them with `recsys data synth --out {data_dir}`"
        )
    users, items, interactions = (pd.read_parquet(data_dir / name) for name in FILES)
    interactions["split"] = assign_split(
        interactions, config.split_method, config.split_ratios, seed
    )
    return Dataset(config.schema, users, items, interactions)
