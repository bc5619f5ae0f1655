"""The FastAPI app factory: ``uvicorn --factory service.app:create_app``.

The lifespan opens the vector index and the state store, loads + verifies + warms the bundle
and its collection, then starts two background tasks (catalog/rollout sync and the indexing
worker) before the app reports ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.api.errors import install_error_handlers
from service.api.middleware import RequestMiddleware
from service.api.routes import items, models, ops, recommendations, users
from service.logs import configure_logging
from service.metrics import Metrics
from service.online.index_worker import IndexWorker
from service.online.recommender import Recommender
from service.online.runtime import Runtime
from service.settings import Settings, get_settings
from service.wiring import index_from_settings, store_from_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Real-time recommendations: the user tower embeds the user from profile,
context and recent events; Milvus retrieves candidates from the bundle's collection; the
ranker scores them. Errors: `{"error": {"code", "message", "field"}, "request_id"}`.
Auth: `X-API-Key` (admin routes need an admin key) when keys are configured."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        index = index_from_settings(settings)
        store = store_from_settings(settings)
        runtime = Runtime(settings, index, store, metrics)
        tasks: list[asyncio.Task] = []
        try:
            await runtime.start()
            app.state.runtime = runtime
            app.state.recommender = Recommender(runtime)
            tasks.append(asyncio.create_task(runtime.sync_forever(), name="sync"))
            if settings.index_worker:
                tasks.append(asyncio.create_task(IndexWorker(runtime).run_forever(), name="worker"))
            if not (settings.api_keys or settings.admin_api_keys):
                log.warning("auth is OFF: no RECSYS_API_KEYS / RECSYS_ADMIN_API_KEYS configured")
            log.info("ready", extra={"model_version": runtime.model.version})
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            index.close()
            store.close()

    app = FastAPI(
        title="recsys",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.runtime = None
    install_error_handlers(app)
    for module in (recommendations, users, items, models, ops):
        app.include_router(module.router)
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    return app
