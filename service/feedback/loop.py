"""The feedback loop of one app: what the recommendation and event routes hand over.

`record` turns a finished answer into an impression for the buffered writer (nothing
blocks); `attribute` finds the impressions a batch of events answers and stores them as
feedback. Built in the app's lifespan, closed (flushed) at its shutdown."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from service.feedback.attribution import attribute
from service.feedback.records import DEFAULT_VARIANT, Impression, ShownItem
from service.feedback.stats import OnlineStats
from service.feedback.writer import ImpressionWriter
from service.metrics import Metrics
from service.online.domain import Recommendation, RecommendationQuery
from service.settings import Settings
from service.state import Event, Retention, StateStore, StoreError

log = logging.getLogger(__name__)


class FeedbackLoop:
    def __init__(self, store: StateStore, settings: Settings, metrics: Metrics) -> None:
        self._store, self._settings = store, settings
        self.keep = Retention(settings.impressions_max_rows, settings.impressions_max_age_s)
        self.stats = OnlineStats(metrics)
        self.writer = (
            ImpressionWriter(
                store,
                self.keep,
                metrics,
                buffer=settings.impressions_buffer,
                batch=settings.impressions_batch,
                flush_s=settings.impressions_flush_s,
            )
            if settings.impressions
            else None
        )

    def record(
        self,
        request_id: str,
        query: RecommendationQuery,
        result: Recommendation,
        variant: str = DEFAULT_VARIANT,
    ) -> None:
        if self.writer is None:
            return
        impression = Impression(
            request_id=request_id,
            ts=time.time(),
            user_id=result.user_id,
            model_version=result.model_version,
            variant=variant,
            items=tuple(
                ShownItem(item.item_id, n, item.score, item.source)
                for n, item in enumerate(result.items, start=1)
            ),
            context=query.context,
            features=result.user_features,
            fallback_reason=result.fallback_reason,
        )
        if self.writer.offer(impression):
            self.stats.shown(impression)

    def attribute(
        self, user_id: str, events: Sequence[Event], request_ids: Sequence[str | None]
    ) -> int:
        """Store the attributed ones of ``events`` as feedback; returns how many. The events
        are stored already: a store failing now leaves them unattributed, not refused."""
        if self.writer is None:
            return 0
        window = self._settings.attribution_window_s
        unwritten = self.writer.unwritten(user_id)
        try:
            found = attribute(self._store, user_id, events, request_ids, window, unwritten)
            stored = self._store.add_feedback(found, self.keep) if found else []
        except StoreError as exc:
            log.warning("attribution failed, %d events left unattributed: %s", len(events), exc)
            stored = []
        self.stats.answered(stored, len(events) - len(stored))
        return len(stored)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
