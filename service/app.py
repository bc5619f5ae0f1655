"""The FastAPI app factory: ``uvicorn --factory service.app:create_app``.

The lifespan opens the vector index and the state store, loads + verifies + warms the bundle
and its collection, then starts two background tasks (catalog/rollout sync and the indexing
worker) before the app reports ready. This is the service's composition root: tests pass their
own adapters and model loader (``tests/fakes.py``) and get the same app.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.api import http_server, openapi
from service.api.admission import Admission, in_flight_limit
from service.api.errors import install_error_handlers
from service.api.middleware import RequestMiddleware
from service.api.paths import EncodedSlashes
from service.api.routes import experiments, items, models, ops, recommendations, similar, users
from service.feedback.loop import FeedbackLoop
from service.index import VectorIndex
from service.logs import configure_logging
from service.metrics import Metrics
from service.model import load_serving_model
from service.online.index_worker import IndexWorker
from service.online.ports import ModelLoader
from service.online.recommender import Recommender
from service.online.runtime import Runtime
from service.online.shadow import Shadow
from service.settings import Settings, get_settings
from service.state import StateStore
from service.wiring import index_from_settings, store_from_settings

Adapters = Callable[[Settings], tuple[VectorIndex, StateStore]]

log = logging.getLogger(__name__)

DESCRIPTION = """Real-time recommendations: the user tower embeds the user from profile,
context and recent events; Milvus retrieves candidates from the bundle's collection; the
ranker scores them. Errors: `{"error": {"code", "message", "field"}, "request_id"}`.
Auth: `X-API-Key` (admin routes need an admin key) when keys are configured."""


def adapters_from_settings(settings: Settings) -> tuple[VectorIndex, StateStore]:
    return index_from_settings(settings), store_from_settings(settings)


def create_app(
    settings: Settings | None = None,
    *,
    adapters: Adapters = adapters_from_settings,
    load_model: ModelLoader | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    metrics = Metrics()
    load_model = load_model or functools.partial(
        load_serving_model, onnx_threads=settings.onnx_threads
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        index, store = adapters(settings)
        runtime = Runtime(settings, index, store, metrics, load_model)
        tasks: list[asyncio.Task] = []
        recommender: Recommender | None = None
        shadow: Shadow | None = None
        loop: FeedbackLoop | None = None
        try:
            await runtime.start()
            app.state.runtime = runtime
            app.state.recommender = recommender = Recommender(index, store, settings, metrics)
            app.state.feedback = loop = FeedbackLoop(store, settings, metrics)
            app.state.shadow = shadow = Shadow(
                recommender.recommend,
                metrics,
                settings.shadow_max_in_flight,
                settings.shadow_fraction,
            )
            tasks.append(asyncio.create_task(runtime.sync_forever(), name="sync"))
            if settings.index_worker:
                tasks.append(asyncio.create_task(IndexWorker(runtime).run_forever(), name="worker"))
            if not (settings.api_keys or settings.admin_api_keys):
                log.warning("auth is OFF: no RECSYS_API_KEYS / RECSYS_ADMIN_API_KEYS configured")
            if runtime.model is not None:
                log.info("ready", extra={"model_version": runtime.model.version})
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if shadow is not None:
                await shadow.drain()
            if recommender is not None:
                recommender.close()
            if loop is not None:
                loop.close()  # every accepted impression is written before the store closes
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
    app.state.admission = Admission(in_flight_limit(settings), metrics)
    install_error_handlers(app)
    openapi.install(app)
    for module in (recommendations, users, items, similar, models, experiments, ops):
        app.include_router(module.router)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    http_server.configure(settings)  # the factory runs in every worker process
    app.add_middleware(EncodedSlashes)
    return app
