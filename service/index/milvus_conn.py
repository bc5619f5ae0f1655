"""One lazily opened pymilvus client, with pymilvus errors turned into ours.

Connects on the first call, not before, and again after a failed attempt, so a service that
starts while Milvus is down serves fallbacks until it comes up. Each client is `dedicated`
(its own gRPC channel, closed by `close`). A Lite file is opened through pymilvus (which
starts an embedded Lite engine per file and process) and released on the last close.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import grpc
from pymilvus import MilvusClient
from pymilvus.exceptions import ConnectionConfigException, MilvusException

from service.index import lite_files, milvus_search
from service.index.port import (
    CollectionNotFound,
    IndexConfigError,
    IndexUnavailable,
    VectorIndexError,
)
from service.redact import redact

UNAVAILABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)

T = TypeVar("T")


class MilvusConnection:
    """Runs `call(client)` with error translation; thread-safe."""

    def __init__(
        self, uri: str, timeout_s: float, admin_timeout_s: float, token: str, db_name: str
    ) -> None:
        if not (timeout_s > 0 and admin_timeout_s > 0):
            raise IndexConfigError(f"timeouts must be positive: {timeout_s!r}, {admin_timeout_s!r}")
        self.uri = uri
        self.timeout_s, self.admin_timeout_s = float(timeout_s), float(admin_timeout_s)
        self.lite_file = None if lite_files.is_server_uri(uri) else lite_files.lite_file_path(uri)
        self._token, self._db_name = token, db_name
        self._is_lite: bool | None = True if self.lite_file else None
        self._client: MilvusClient | None = None
        self._closed = False
        self._lock = threading.Lock()

    def call(self, action: str, collection: str, call: Callable[[MilvusClient], T]) -> T:
        client = self._connect()
        try:
            return call(client)
        except grpc.RpcError as e:
            if e.code() in UNAVAILABLE_CODES:
                raise self._unavailable(action, e) from None
            raise VectorIndexError(f"Milvus {action} {collection} failed: {error_text(e)}") from e
        except MilvusException as e:
            raise self._translate(action, collection, e) from e

    def is_lite(self) -> bool:
        """Milvus Lite, by URI or because the server's Connect reply carries no version."""
        if self._is_lite is None:
            info = self.call(
                "get_server_version",
                "",
                lambda c: c.get_server_version(timeout=self.timeout_s, detail=True),
            )
            self._is_lite = not info.get("version")
        return self._is_lite

    def close(self) -> None:
        with self._lock:
            client, self._client, self._closed = self._client, None, True
        if client is None:
            return
        client.close()
        if self.lite_file is not None and lite_files.close_embedded(self.lite_file):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(self.lite_file))

    def _connect(self) -> MilvusClient:
        with self._lock:
            if self._closed:
                raise VectorIndexError(f"the index for {redact(self.uri)} is closed")
            if self._client is None:
                self._client = self._open()
            return self._client

    def _open(self) -> MilvusClient:
        if self.lite_file is None:
            return self._new_client(self.uri)
        path = self.lite_file
        path.parent.mkdir(parents=True, exist_ok=True)
        first = lite_files.open_embedded(path)
        try:
            if first and lite_files.held_elsewhere(path):
                raise self._lite_locked()
            return self._new_client(str(path))
        except BaseException:
            lite_files.close_embedded(path)
            raise

    def _new_client(self, uri: str) -> MilvusClient:
        try:
            client = MilvusClient(
                uri=uri,
                token=self._token,
                db_name=self._db_name,
                timeout=self.timeout_s,
                dedicated=True,
            )
        except ConnectionConfigException as e:
            if self.lite_file is None:
                raise IndexConfigError(
                    f"bad Milvus URI {redact(self.uri)!r}: {e.message}"
                ) from None
            raise self._lite_locked() from None
        except (MilvusException, grpc.RpcError) as e:
            raise self._unavailable("connect", e) from None
        milvus_search.decode_columns(client)
        return client

    def _lite_locked(self) -> IndexUnavailable:
        return IndexUnavailable(
            f"cannot open Milvus Lite file {self.lite_file}: another process holds it "
            "(a Lite .db file has one user). Serve it with `recsys milvus-lite serve "
            "--db <file> --port <port>` and use http://127.0.0.1:<port> in every process"
        )

    def _translate(self, action: str, collection: str, e: MilvusException) -> VectorIndexError:
        message = str(e.message)
        lowered = message.lower()
        if e.code in UNAVAILABLE_CODES or "timeout" in lowered or "fail connecting" in lowered:
            return self._unavailable(action, e)
        if "collection not found" in lowered or "can't find collection" in lowered:
            return CollectionNotFound(f"no collection {collection} at {redact(self.uri)}")
        return VectorIndexError(f"Milvus {action} {collection} failed: {redact(message)}")

    def _unavailable(self, action: str, e: Exception) -> IndexUnavailable:
        return IndexUnavailable(
            f"Milvus at {redact(self.uri)} unavailable: {action} got no answer within its timeout "
            f"(timeout_s={self.timeout_s:g}, admin_timeout_s={self.admin_timeout_s:g}; "
            f"{error_text(e)})"
        )


def error_text(e: Exception) -> str:
    if isinstance(e, grpc.RpcError):
        return f"gRPC {e.code().name}: {e.details()}"
    if isinstance(e, MilvusException):
        return f"{type(e).__name__}: {e.message}"
    return f"{type(e).__name__}: {e}"
