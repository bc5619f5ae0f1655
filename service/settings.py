"""All configuration in one place: environment variables with the ``RECSYS_`` prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


def get_settings() -> Settings:
    return Settings()
