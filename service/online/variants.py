"""The experiment a serving process runs now: each variant's loaded model, followed from the
store like the rollout record (`service.online.runtime`).

`start` (an admin route) loads every bundle the experiment names in this process first (a
bundle that does not load, or whose collection is empty while the catalog holds items, is
refused and the record is left alone), then writes the record; every other process sees the
new record on its next sync and loads the same bundles. A model already loaded for the same
bundle (the served one, or a variant of the previous experiment) is reused, so changing only
the weights loads nothing. Experiments do not pass through the rollout gate: measuring a
candidate online is what they are for; a full rollout (`POST /v1/admin/reload`) still does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from service.feedback.records import DEFAULT_VARIANT
from service.online.experiment import EXPERIMENT_KEY, Experiment, Variant, assign
from service.online.ports import ModelLoadError, ServableModel
from service.state import StateStore

log = logging.getLogger(__name__)
FOLLOW_RETRY_S = 5.0


@dataclass(frozen=True)
class Live:
    """An experiment with the models of its variants (and of its shadow), immutable: a request
    reads ``Experiments.live`` once."""

    experiment: Experiment
    raw: str  # the record as stored (what a follower compares)
    served_by: dict[str, ServableModel] = field(default_factory=dict)  # variant -> model

    def pick(self, user_id: str) -> tuple[str, ServableModel]:
        variants = self.experiment.variants
        chosen = variants[assign(self.experiment.name, user_id, self.experiment.weights)]
        return chosen.name, self.served_by[chosen.name]

    @property
    def shadow(self) -> tuple[str, ServableModel] | None:
        s = self.experiment.shadow
        return (s.name, self.served_by[s.name]) if s is not None else None


class Experiments:
    def __init__(
        self,
        store: StateStore,
        load: Callable[[Path, bool], ServableModel],
        served: Callable[[], tuple[str | None, ServableModel | None]],
    ) -> None:
        """``load(path, require_items)`` loads a bundle (`ModelLoader` bound to the index and
        store); ``served()`` is the runtime's (path, model), reused for a variant naming it."""
        self._store, self._load, self._served = store, load, served
        self.live: Live | None = None
        self._lock = asyncio.Lock()
        self._failed: tuple[str, float] | None = None  # (record, when it failed to load)
        self.last_error: str | None = None

    def models(self) -> list[ServableModel]:
        """The models the experiment serves besides the runtime's own (distinct objects)."""
        live = self.live
        if live is None:
            return []
        _, own = self._served()
        seen: dict[int, ServableModel] = {}
        for model in live.served_by.values():
            if model is not own:
                seen.setdefault(id(model), model)
        return list(seen.values())

    def pick(self, user_id: str, model: ServableModel) -> tuple[str, ServableModel]:
        live = self.live
        return live.pick(user_id) if live is not None else (DEFAULT_VARIANT, model)

    def _record(self) -> str | None:
        return self._store.get_meta(EXPERIMENT_KEY) or None

    def _models_for(self, experiment: Experiment, require_items: bool) -> dict[str, ServableModel]:
        """Runs in a thread. Raises ModelLoadError naming the variant."""
        known: dict[str, ServableModel] = {}
        path, own = self._served()
        if path is not None and own is not None:
            known[path] = own
        if self.live is not None:
            for v in (*self.live.experiment.variants, self.live.experiment.shadow):
                if v is not None:
                    known.setdefault(v.bundle, self.live.served_by[v.name])
        every: list[Variant] = [*experiment.variants, *filter(None, [experiment.shadow])]
        models: dict[str, ServableModel] = {}
        for v in every:
            if v.bundle not in known:
                try:
                    known[v.bundle] = self._load(Path(v.bundle), require_items)
                except ModelLoadError as exc:
                    raise ModelLoadError(f"variant {v.name}: {exc}") from None
            models[v.name] = known[v.bundle]
        return models

    async def start(self, experiment: Experiment) -> Live:
        """Load what ``experiment`` needs here, then store it (module docstring)."""
        async with self._lock:
            models = await anyio.to_thread.run_sync(self._models_for, experiment, True)
            raw = experiment.to_json()
            await anyio.to_thread.run_sync(self._store.put_meta, EXPERIMENT_KEY, raw)
            self.live, self._failed, self.last_error = Live(experiment, raw, models), None, None
            log.info("experiment %s started: %s", experiment.name, raw)
            return self.live

    async def stop(self) -> Experiment | None:
        async with self._lock:
            ended = self.live.experiment if self.live is not None else None
            await anyio.to_thread.run_sync(self._store.put_meta, EXPERIMENT_KEY, "")
            self.live = None
            return ended

    async def follow(self) -> None:
        """Adopt the stored record if another process changed it (retry a failed one every
        ``FOLLOW_RETRY_S``; meanwhile keep serving what this process had)."""
        raw = await anyio.to_thread.run_sync(self._record)
        if raw == (self.live.raw if self.live else None):
            return
        if (
            self._failed
            and self._failed[0] == raw
            and time.monotonic() - self._failed[1] < (FOLLOW_RETRY_S)
        ):
            return
        async with self._lock:
            raw = await anyio.to_thread.run_sync(self._record)
            if raw is None:
                self.live = None
                return
            if raw == (self.live.raw if self.live else None):
                return
            try:
                experiment = Experiment.from_json(raw)
                models = await anyio.to_thread.run_sync(self._models_for, experiment, False)
            except (ModelLoadError, ValueError, KeyError, TypeError) as exc:
                self._failed, self.last_error = (raw, time.monotonic()), str(exc)
                log.error("cannot follow the experiment record: %s", exc)
                return
            self.live, self._failed, self.last_error = Live(experiment, raw, models), None, None
            log.info("followed the experiment %s", experiment.name)
