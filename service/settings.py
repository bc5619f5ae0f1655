"""All configuration in one place: environment variables with the ``RECSYS_`` prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SourceName = Literal["two_tower", "item_to_item", "trending", "fresh"]
Share = Annotated[float, Field(gt=0, le=1)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=None, extra="ignore")

    milvus_uri: str = Field(
        "./data/milvus.db",
        description="pymilvus URI: a Lite file (embedded), http://host:port (Lite server or "
        "Milvus), or memory:// (exact NumPy index, tests only).",
    )
    milvus_token: str = Field(
        "", description="Milvus token (user:password), if the server needs one."
    )
    milvus_timeout_s: float = Field(2.0, gt=0, description="Timeout of every Milvus call.")
    milvus_index: Literal["auto", "flat", "hnsw", "ivf_flat"] = Field(
        "auto", description="Index type; auto = FLAT on Milvus Lite, HNSW on a Milvus server."
    )
    index_checkpoint_dir: Path = Field(
        Path("data/index-checkpoints"), description="Where batch indexing jobs keep checkpoints."
    )

    # the online service
    host: str = Field("127.0.0.1", description="Address `recsys serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `recsys serve` listens on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    bundle: Path | None = Field(
        None, description="Bundle the service loads at start (a folder under bundles/)."
    )
    bundles_root: Path | None = Field(
        None,
        description="Folder that admin reloads may load bundles from (default: the folder "
        "holding RECSYS_BUNDLE).",
    )
    store_uri: str = Field(
        "sqlite:///data/state.db",
        description="State store: sqlite:///path (one machine, several processes) or "
        "redis://host:port/db (several machines).",
    )
    store_timeout_s: float = Field(
        2.0, gt=0, description="Timeout of every store call (SQLite: wait for a write lock)."
    )
    redis_prefix: str = Field(
        "recsys:",
        min_length=1,
        max_length=64,
        description="Key prefix of the Redis store (deployments sharing a server differ in it).",
    )
    events_per_user: int = Field(200, ge=1, description="Recent events kept per user.")
    api_keys: list[str] = Field(
        default_factory=list,
        description="Keys accepted in X-API-Key (JSON list in the env var). Empty: auth off.",
    )
    admin_api_keys: list[str] = Field(
        default_factory=list, description="Keys for /v1/admin routes (JSON list)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (JSON list, e.g. "
        '["https://shop.example"]). Empty: no CORS headers, browsers on other origins are refused.',
    )
    admin_loopback_only: bool = Field(
        False,
        description="Admin routes answer loopback clients only (403 otherwise), so a published "
        "port does not expose them; the compose stack sets it.",
    )
    search_deadline_ms: float = Field(
        300, gt=0, description="Deadline of the Milvus search; past it: popular items."
    )
    rank_deadline_ms: float = Field(
        300, gt=0, description="Deadline of the ranker; past it: retrieval order."
    )
    sources: dict[SourceName, Share] = Field(
        default_factory=lambda: {"two_tower": 1.0},
        min_length=1,
        description="Candidate sources and their shares of the candidates (JSON object; "
        "two_tower, item_to_item, trending, fresh); a request may name its own.",
    )
    source_deadlines_ms: dict[SourceName, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: {"item_to_item": 100.0, "trending": 50.0, "fresh": 50.0},
        description="Deadline of each source but two_tower (which has "
        "RECSYS_SEARCH_DEADLINE_MS); past it the others fill its quota.",
    )
    item_to_item_seeds: int = Field(
        5,
        ge=1,
        le=50,
        description="The user's most recent items whose neighbours item_to_item finds.",
    )
    trending_half_life_s: float = Field(
        3600.0, gt=0, description="Half-life of an event's weight in the trending counts."
    )
    trending_capacity: int = Field(
        10_000, ge=10, le=1_000_000, description="Most items the trending counts keep in memory."
    )
    onnx_threads: int = Field(1, ge=1, description="Intra-op threads per ONNX session.")
    batch_max: int = Field(
        32, ge=1, le=256, description="Most requests one batched stage (search, ranker) serves."
    )
    stage_threads: int = Field(
        2,
        ge=1,
        le=16,
        description="Threads of the search and rank stages: batches in flight at once in each "
        "(Milvus and onnxruntime use a core each).",
    )
    batch_window_ms: float = Field(
        1.0,
        ge=0,
        le=50,
        description="Longest a batched stage waits for more requests, only while under load "
        "(a lone request never waits).",
    )
    max_in_flight: int = Field(
        0,
        ge=0,
        description="Recommendation requests a process serves at once; past it 503 with "
        "Retry-After at once (load shedding). 0: RECSYS_STAGE_THREADS x RECSYS_BATCH_MAX.",
    )
    history_length: int = Field(
        50, ge=1, description="Recent events read per request (history features, seen items)."
    )
    index_worker: bool = Field(True, description="Run the item-indexing worker in this process.")
    index_batch: int = Field(256, ge=1, description="Items per micro-batch of the worker.")
    index_poll_s: float = Field(0.1, gt=0, description="Worker poll interval when idle.")
    index_lease_s: float = Field(
        5,
        gt=0,
        description="Lease of a claimed item change, renewed every third of it while the "
        "worker writes it: a dead process's claims are taken over this long after.",
    )
    index_max_attempts: int = Field(
        3, ge=1, le=100, description="Refusals of an item change before it is marked failed."
    )
    index_retry_s: float = Field(
        1.0, ge=0, description="Delay before a refused item change is tried again."
    )
    sync_interval_s: float = Field(
        0.5, gt=0, description="How often a process reads catalog changes and the active bundle."
    )
    max_body_bytes: int = Field(4 << 20, ge=1024, description="Largest accepted request body.")
    rollout_gate: Literal["compare", "off"] = Field(
        "compare",
        description="compare: a reload is refused (409) unless the new bundle was scored against "
        "the serving one (recsys train --baseline) and is no worse by the margins; off: no gate.",
    )
    gate_auc_margin: float = Field(
        0.005, ge=0, le=1, description="How much lower the new bundle's ranker AUC may be."
    )
    gate_recall_margin: float = Field(
        0.005, ge=0, le=1, description="How much lower the new bundle's Recall@50 may be."
    )
    # the feedback loop
    impressions: bool = Field(
        True, description="Log every answered recommendation (off: no impressions, no CTR)."
    )
    impressions_max_rows: int = Field(
        1_000_000, ge=1, description="Impressions (and attributed events) the store keeps."
    )
    impressions_max_age_s: float = Field(
        7 * 86_400, gt=0, description="Oldest impression (and attributed event) the store keeps."
    )
    impressions_buffer: int = Field(
        10_000,
        ge=1,
        description="Impressions held in memory awaiting a write; past it new ones are dropped "
        "(counted): the most a crash can lose.",
    )
    impressions_batch: int = Field(500, ge=1, description="Impressions per store write.")
    impressions_flush_s: float = Field(
        0.5, gt=0, le=60, description="How often the impression writer writes its buffer."
    )
    attribution_window_s: float = Field(
        3600,
        gt=0,
        description="An event is attributed to an impression shown at most this long before it.",
    )
    shadow_max_in_flight: int = Field(
        8,
        ge=1,
        description="Shadow-variant computations running at once (an experiment's shadow); past "
        "it a request gets no shadow (counted in rec_shadow_skipped_total).",
    )
    shadow_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of requests the experiment's shadow variant also answers (it shares "
        "the CPU with served traffic).",
    )
    header_timeout_s: float = Field(
        10,
        gt=0,
        description="Longest a connection may take to send a request's headers (after it opens "
        "or after its last answer); past it the connection is closed.",
    )
    body_timeout_s: float = Field(
        10, gt=0, description="Longest a request body may take to arrive; past it a 408."
    )
    keep_alive_s: int = Field(
        5, ge=1, description="An idle keep-alive connection is closed after this long."
    )
    shutdown_timeout_s: int = Field(
        15,
        ge=1,
        description="On SIGTERM, longest the requests in flight are waited for before they "
        "are cancelled (the process then exits 0).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of the JSON logs."
    )


def reload_root(settings: Settings) -> Path | None:
    """The folder admin reloads are confined to: ``bundles_root``, else the configured
    bundle's folder; None when neither is set (then no reload is allowed)."""
    if settings.bundles_root is not None:
        return settings.bundles_root.resolve()
    return settings.bundle.resolve().parent if settings.bundle is not None else None


def get_settings() -> Settings:
    return Settings()
