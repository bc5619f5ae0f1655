"""Prometheus metrics of one app instance (own registry, so tests can build several apps).

Labels are bounded: route templates, status codes, stage and reason names; never user or
item ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
POSITION_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200)
OVERLAP_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rec_requests", "HTTP requests.", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "rec_request_duration_seconds",
            "HTTP request latency.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "rec_stage_duration_seconds",
            "Duration of each recommendation stage.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "rec_batch_size",
            "Requests served together by one call of a batched stage.",
            ["stage"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_wait = Histogram(
            "rec_batch_wait_seconds",
            "Time a request waited for its batched stage to start.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "rec_fallbacks", "Degraded answers by reason.", ["reason"], registry=r
        )
        self.shed = Counter(
            "rec_shed",
            "Recommendation requests answered 503 at once: past RECSYS_MAX_IN_FLIGHT.",
            registry=r,
        )
        self.cold_starts = Counter("rec_cold_starts", "Requests for unknown users.", registry=r)
        self.unknown_item_events = Counter(
            "rec_events_unknown_items",
            "Events accepted for items the catalog does not hold.",
            registry=r,
        )
        self.queue_depth = Gauge(
            "rec_index_queue_depth", "Item changes waiting to be indexed.", registry=r
        )
        self.indexed = Counter(
            "rec_items_indexed", "Item changes applied to the vector index.", ["op"], registry=r
        )
        self.index_errors = Counter(
            "rec_index_worker_errors", "Failed indexing micro-batches.", registry=r
        )
        self.refused = Counter(
            "rec_index_refusals",
            "Item changes the index or the item tower refused (each attempt).",
            registry=r,
        )
        self.failed = Counter(
            "rec_index_failed_items",
            "Item changes moved to failed after their last refused attempt.",
            registry=r,
        )
        self.items = Gauge("rec_item_table_items", "Items in the in-memory item table.", registry=r)
        self.unencodable_items = Gauge(
            "rec_item_table_unencodable",
            "Catalog items left out of the item table: their row does not encode.",
            registry=r,
        )
        self.model = Info("rec_model", "The bundle being served.", registry=r)
        self.reloads = Counter("rec_model_reloads", "Model reloads.", ["result"], registry=r)
        self._feedback(r)
        self._shadow(r)

    def _shadow(self, r: CollectorRegistry) -> None:
        self.shadow_latency = Histogram(
            "rec_shadow_duration_seconds",
            "Time the shadow variant took for one request (off the response path).",
            ["variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.shadow_overlap = Histogram(
            "rec_shadow_overlap",
            "overlap@k of the shadow variant's top k with the served top k.",
            ["variant"],
            buckets=OVERLAP_BUCKETS,
            registry=r,
        )
        self.shadow_skipped = Counter(
            "rec_shadow_skipped",
            "Shadow computations skipped (too many in flight) or failed, by reason.",
            ["variant", "reason"],
            registry=r,
        )

    def _feedback(self, r: CollectorRegistry) -> None:
        served = ["model_version", "variant"]
        self.impressions = Counter(
            "rec_impressions", "Answered recommendations logged.", served, registry=r
        )
        self.impression_items = Counter(
            "rec_impression_items", "Items shown in logged answers.", served, registry=r
        )
        self.impressions_dropped = Counter(
            "rec_impressions_dropped",
            "Impressions dropped: the writer's buffer was full.",
            registry=r,
        )
        self.impression_write_errors = Counter(
            "rec_impression_write_errors", "Failed writes of an impression batch.", registry=r
        )
        self.attributed = Counter(
            "rec_events_attributed",
            "Events attributed to an impression, by kind (positive | negative).",
            [*served, "kind"],
            registry=r,
        )
        self.unattributed = Counter(
            "rec_events_unattributed", "Events no impression in the window showed.", registry=r
        )
        self.positives = Counter(
            "rec_attributed_positives",
            "Shown items with an attributed positive event (first one per answer and item).",
            served,
            registry=r,
        )
        self.clicked_position = Histogram(
            "rec_clicked_position",
            "Position (1 = first) of shown items with an attributed positive.",
            served,
            buckets=POSITION_BUCKETS,
            registry=r,
        )
