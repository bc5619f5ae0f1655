"""Online metrics per served model version and variant, since this process started: the
Prometheus counters (no user or item ids in labels) and the same counts kept for the
`GET /v1/models` and `GET /v1/experiments` summaries."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from service.feedback.records import Feedback, Impression
from service.metrics import Metrics


@dataclass
class Counts:
    impressions: int = 0  # answers
    items_shown: int = 0
    positives: int = 0  # shown items with an attributed positive (the first per answer+item)
    negatives: int = 0
    position_sum: int = 0  # of the positives

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "impressions": self.impressions,
            "items_shown": self.items_shown,
            "positives": self.positives,
            "negatives": self.negatives,
            "ctr": self.positives / self.items_shown if self.items_shown else None,
            "mean_click_position": self.position_sum / self.positives if self.positives else None,
        }


class OnlineStats:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._counts: dict[tuple[str, str], Counts] = {}
        self._lock = threading.Lock()
        self.started_at = time.time()

    def _of(self, version: str, variant: str) -> Counts:
        return self._counts.setdefault((version, variant), Counts())

    def shown(self, impression: Impression) -> None:
        labels = (impression.model_version, impression.variant)
        self._metrics.impressions.labels(*labels).inc()
        self._metrics.impression_items.labels(*labels).inc(len(impression.items))
        with self._lock:
            counts = self._of(*labels)
            counts.impressions += 1
            counts.items_shown += len(impression.items)

    def answered(self, records: Sequence[Feedback], unattributed: int) -> None:
        m = self._metrics
        if unattributed:
            m.unattributed.inc(unattributed)
        for f in records:
            labels = (f.model_version, f.variant)
            m.attributed.labels(*labels, "positive" if f.positive else "negative").inc()
            with self._lock:
                counts = self._of(*labels)
                counts.negatives += not f.positive
                if f.first:
                    counts.positives += 1
                    counts.position_sum += f.position
            if f.first:
                m.positives.labels(*labels).inc()
                m.clicked_position.labels(*labels).observe(f.position)

    def summary(self, version: str | None = None) -> list[dict]:
        """Per (model version, variant): the counts and CTR (positives / items shown)."""
        with self._lock:
            rows = sorted(self._counts.items())
            return [
                {"model_version": v, "variant": name, **c.as_dict()}
                for (v, name), c in rows
                if version is None or v == version
            ]
