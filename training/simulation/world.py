"""Simulated users of the synthetic ``posts`` data: the generator's latent truth (never shown
to a model) decides their context and each click, the same model that labelled the data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.datasets.posts import CLIENT_TYPES, Latent, SynthConfig, latent_structure


class World:
    """Clicks drawn from ``Latent.click_logit`` for users ``u<n>`` and items ``p<n>``."""

    def __init__(self, cfg: SynthConfig, seed: int) -> None:
        # the generator draws the latent structure first from its seed: the same truth
        self.latent: Latent = latent_structure(cfg, np.random.default_rng(cfg.seed))
        self.rng = np.random.default_rng(seed)
        self.users = [f"u{u}" for u in range(cfg.users)]

    def context(self, user: str) -> str:
        """The user's own device most of the time (as in the generated data), else any."""
        own = self.latent.device[_index(user)]
        device = own if self.rng.random() < 0.8 else self.rng.integers(len(CLIENT_TYPES))
        return CLIENT_TYPES[int(device)]

    def click_probability(self, user: str, items: Sequence[str], context: str) -> np.ndarray:
        if not items:
            return np.zeros(0)
        rows = np.full(len(items), _index(user))
        columns = np.array([_index(i) for i in items])
        device = np.full(len(items), CLIENT_TYPES.index(context))
        return 1.0 / (1.0 + np.exp(-self.latent.click_logit(rows, columns, device)))

    def clicks(self, user: str, items: Sequence[str], context: str) -> list[str]:
        """The items this user clicks in an answer: each independently, by its probability."""
        p = self.click_probability(user, items, context)
        return [i for i, hit in zip(items, self.rng.random(len(items)) < p, strict=True) if hit]


def _index(external_id: str) -> int:
    return int(external_id[1:])
