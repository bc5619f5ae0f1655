"""``recsys simulate``: the feedback loop run against the real service, with simulated users
whose clicks follow the synthetic ``posts`` data's latent truth (docs/simulation.md)."""
