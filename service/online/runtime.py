"""What a serving process holds: the index, the store, and the model it serves now.

Requests read ``runtime.model`` once and use that snapshot to the end, so a swap (one
reference assignment) never mixes two bundles inside a request.

Several processes follow one rollout record in the store: ``configured`` is the bundle the
deployment names (``RECSYS_BUNDLE``), ``active`` the one a reload moved to. A process that
starts with the configured bundle of the record adopts its active bundle (a restarted worker
rejoins its peers); a new configuration resets the record. Every process polls the record and
follows a reload made through any of them.

Only two things write the record: a new configuration whose bundle loaded, and a successful
admin reload. A process that cannot load the active bundle neither falls back to another one
nor touches the record (which would roll every other process back with it): it starts without
a model, not ready, and keeps trying the active bundle every ``FOLLOW_RETRY_S``. A rollback is
an explicit admin action: ``POST /v1/admin/reload`` with the previous bundle.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path
from typing import Any

import anyio
import orjson

from service.index import VectorIndex, VectorIndexError
from service.metrics import Metrics
from service.online import gate
from service.online.gate import GATE_METRICS, GateDecision, RolloutRefused
from service.online.ports import ModelLoader, ModelLoadError, ServableModel
from service.online.variants import Experiments
from service.settings import Settings
from service.state import StateStore, StoreError

log = logging.getLogger(__name__)
ROLLOUT_KEY = "rollout"
FOLLOW_RETRY_S = 5.0  # how often a process retries an active bundle it could not load


def _frozen(load_model: ModelLoader) -> ModelLoader:
    """``load_model``, then what it loaded moved out of the cyclic collector's reach
    (`gc.freeze`). A model at 100k items holds about a million objects (the item table), and
    a full collection over them stalled whichever request was allocating for ~100 ms every
    few seconds: 1 client with all four sources, `merge` took 90-102 ms in 4 of 2000 answers
    (2026-12-04). Garbage is collected first so it is not frozen with the model."""

    def load(*args: Any, **kwargs: Any) -> ServableModel:
        model = load_model(*args, **kwargs)
        gc.collect()
        gc.freeze()
        return model

    return load


def _path(path: Path | str) -> str:
    return str(Path(path).resolve())


class Runtime:
    def __init__(
        self,
        settings: Settings,
        index: VectorIndex,
        store: StateStore,
        metrics: Metrics,
        load_model: ModelLoader,
    ) -> None:
        self.settings, self.index, self.store, self.metrics = settings, index, store, metrics
        self._load_model = load_model = _frozen(load_model)
        self.model: ServableModel | None = None
        self.model_path: str | None = None
        self.last_reload_error: str | None = None
        self._reload_lock = asyncio.Lock()
        self._failed_follow: tuple[str, float] | None = None  # (path, when it failed)
        self.experiments = Experiments(
            store,
            lambda path, require_items: load_model(path, index, store, require_items),
            lambda: (self.model_path, self.model),
        )

    # rollout record
    def _rollout(self) -> dict[str, str]:
        raw = self.store.get_meta(ROLLOUT_KEY)
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return {}

    def _write_rollout(self, configured: str, active: str) -> None:
        record = {"configured": configured, "active": active}
        self.store.put_meta(ROLLOUT_KEY, orjson.dumps(record).decode())

    async def start(self) -> None:
        """Join the rollout of the configured bundle, or start a new one (module docstring)."""
        if self.settings.bundle is None:
            raise ModelLoadError("no bundle configured: set RECSYS_BUNDLE or pass --bundle")
        configured = _path(self.settings.bundle)
        record = await anyio.to_thread.run_sync(self._rollout)
        if record.get("configured") == configured and record.get("active"):
            await self._join(record["active"])
            return
        await self._load_and_swap(configured, require_items=False)
        await anyio.to_thread.run_sync(self._write_rollout, configured, configured)

    async def _join(self, active: str) -> None:
        """Serve the record's active bundle; if it does not load, start not ready (no model)
        and leave the record alone: `sync_once` retries it."""
        try:
            await self._load_and_swap(active, require_items=False)
        except ModelLoadError as exc:
            self._follow_failed(active, exc)
            log.error(
                "cannot load the active bundle of the rollout; not ready until it loads or an "
                "admin reloads another: %s",
                exc,
            )

    def _follow_failed(self, path: str, exc: ModelLoadError) -> None:
        self._failed_follow = (path, time.monotonic())
        self.last_reload_error = str(exc)

    def _should_follow(self, active: str | None) -> bool:
        if not active or active == self.model_path:
            return False
        if self._failed_follow is None or self._failed_follow[0] != active:
            return True
        return time.monotonic() - self._failed_follow[1] >= FOLLOW_RETRY_S

    async def reload(
        self, path: Path | str, force: bool = False
    ) -> tuple[ServableModel, GateDecision]:
        """Load, verify, warm and check the collection, pass the rollout gate, then swap; the
        old model keeps serving if anything fails or the gate refuses (the error says why)."""
        async with self._reload_lock:
            try:
                model = await self._load(_path(path), require_items=True)
                decision = self._gate(model, force)
                if decision.refused:
                    raise RolloutRefused(decision)
                await self._swap(model, _path(path))
            except ModelLoadError as exc:
                self.last_reload_error = str(exc)
                self.metrics.reloads.labels("failed").inc()
                raise
            except RolloutRefused as exc:
                self.last_reload_error = str(exc)
                self.metrics.reloads.labels("refused").inc()
                raise
            record = await anyio.to_thread.run_sync(self._rollout)
            configured = record.get("configured") or _path(self.settings.bundle or path)
            await anyio.to_thread.run_sync(self._write_rollout, configured, _path(path))
            self.last_reload_error, self._failed_follow = None, None
            self.metrics.reloads.labels("ok").inc()
            return model, decision

    def _gate(self, candidate: ServableModel, force: bool) -> GateDecision:
        s = self.settings
        serving = self.model.version if self.model is not None else None
        decision = gate.decide(
            candidate.info.metrics,
            candidate.version,
            serving,
            dict(zip(GATE_METRICS, (s.gate_auc_margin, s.gate_recall_margin), strict=True)),
            force=force,
            enabled=s.rollout_gate == "compare",
        )
        log.info(
            "rollout gate %s for %s: %s", decision.decision, candidate.version, decision.reason
        )
        return decision

    async def _load_and_swap(self, path: str, require_items: bool) -> ServableModel:
        model = await self._load(path, require_items)
        await self._swap(model, path)
        return model

    async def _load(self, path: str, require_items: bool) -> ServableModel:
        return await anyio.to_thread.run_sync(
            self._load_model, Path(path), self.index, self.store, require_items
        )

    async def _swap(self, model: ServableModel, path: str) -> None:
        self.model, self.model_path = model, path
        requeued = await anyio.to_thread.run_sync(self.store.requeue_not_indexed_in, model.version)
        if requeued:
            log.info("queued %d catalog items for %s", requeued, model.collection)
        self.metrics.model.info(
            {"version": model.version, "collection": model.collection, "ranker": model.info.ranker}
        )
        self.metrics.items.set(len(model.items))

    # background sync
    async def sync_once(self) -> None:
        """Apply catalog changes, follow a reload or an experiment made by another process,
        update gauges."""
        model = self.model
        if model is not None and not model.collection_ready:
            await self._open_collection(model)
        if model is not None:
            await anyio.to_thread.run_sync(model.items.sync, self.store)
            self.metrics.items.set(len(model.items))
            self.metrics.unencodable_items.set(len(model.items.unencodable))
        for other in self.experiments.models():
            if not other.collection_ready:
                await self._open_collection(other)
            await anyio.to_thread.run_sync(other.items.sync, self.store)
        self.metrics.queue_depth.set(await anyio.to_thread.run_sync(self.store.pending_count))
        await self.experiments.follow()
        active = (await anyio.to_thread.run_sync(self._rollout)).get("active")
        if self._should_follow(active):
            async with self._reload_lock:
                # read again: a reload of this process may have written a newer record since
                active = (await anyio.to_thread.run_sync(self._rollout)).get("active")
                if not self._should_follow(active):
                    return
                try:
                    await self._load_and_swap(active, require_items=False)
                    self._failed_follow = self.last_reload_error = None
                    log.info("followed the rollout to %s", active)
                except ModelLoadError as exc:
                    self._follow_failed(active, exc)
                    log.error("cannot follow the rollout to %s: %s", active, exc)

    async def _open_collection(self, model: ServableModel) -> None:
        """The model was loaded while the index did not answer: try its collection again."""
        try:
            await anyio.to_thread.run_sync(model.ensure_collection)
            log.info("vector index answers: %s open", model.collection)
        except VectorIndexError as exc:
            log.debug("vector index still unavailable: %s", exc)

    async def sync_forever(self) -> None:
        while True:
            try:
                await self.sync_once()
            except StoreError as exc:
                log.warning("catalog sync failed: %s", exc)
            await asyncio.sleep(self.settings.sync_interval_s)
