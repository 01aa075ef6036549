"""Wiring of the registry service: settings → context → routes and middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.registry.auth import RegistryAuth
from services.registry.context import RegistryContext, RegistryMetrics
from services.registry.errors import RegistryError, error_response
from services.registry.events.dispatcher import Dispatcher
from services.registry.events.http_sender import WebhookSender
from services.registry.events.hub import EventHub
from services.registry.events.secretbox import SecretBox
from services.registry.gc import Collector, GCPolicy, run_periodically
from services.registry.metadata.migrations import MIGRATION_LOCK, MIGRATIONS
from services.registry.routes import (
    base,
    blobs,
    catalog,
    dashboard,
    manifests,
    referrers,
    tags,
    ui,
    uploads,
    webhooks,
)
from services.registry.settings import RegistrySettings
from services.registry.storage import open_storage
from services.registry.storage.base import StorageUnavailable
from services.registry.storage.blobs import BlobStore
from services.registry.storage.uploads import UploadManager
from shared.cors import cors_middleware
from shared.database import MetadataDB
from shared.observe import ObserveMiddleware
from shared.private_files import tighten
from shared.security_headers import SecurityHeadersMiddleware

__all__ = ["build_context", "create_app"]

logger = logging.getLogger("ecloud.registry")

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")


def build_context(settings: RegistrySettings) -> RegistryContext:
    tighten(settings.data_dir, settings.events.key_file)
    http = httpx.AsyncClient()
    db = MetadataDB(settings.database_url)
    storage = open_storage(settings.storage_url, settings.s3)
    metrics = RegistryMetrics.create()
    return RegistryContext(
        settings=settings,
        db=db,
        http=http,
        auth=RegistryAuth(settings, http),
        metrics=metrics,
        storage=storage,
        blobs=BlobStore(db, storage, review_delay=float(settings.gc_grace)),
        uploads=UploadManager(db, storage),
        events=EventHub(metrics.events_written),
        secret_box=SecretBox(settings.events.key_file),
        webhook_sender=WebhookSender(
            settings.events.webhook_timeout, settings.events.allow_private
        ),
    )


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    response = exc.response()
    if request.method == "HEAD":
        # HEAD carries the status and headers only.
        return Response(status_code=response.status_code, headers=dict(response.headers))
    return response


async def _storage_unavailable(request: Request, exc: Exception) -> Response:
    # The backend's own words stay in the log; the client learns only to retry later.
    logger.warning("storage unavailable on %s %s: %s", request.method, request.url.path, exc)
    response = error_response("UNAVAILABLE", "blob storage is unavailable; retry later")
    if request.method == "HEAD":
        return Response(status_code=response.status_code, headers=dict(response.headers))
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response("METHOD_NOT_ALLOWED")
    if request.url.path.startswith("/v2/"):
        return error_response("NAME_UNKNOWN", "no such endpoint or repository", status=404)
    return error_response("UNSUPPORTED", "no such endpoint", status=exc.status_code)


def create_app(
    settings: RegistrySettings | None = None, ctx: RegistryContext | None = None
) -> Starlette:
    if ctx is None:
        ctx = build_context(settings or RegistrySettings.from_env())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ctx.db.connect()
        await ctx.db.migrate(MIGRATIONS, MIGRATION_LOCK)
        await ctx.auth.start()
        sweeper: asyncio.Task[None] | None = None
        if ctx.settings.gc_interval > 0:
            collector = Collector(
                ctx.db,
                ctx.storage,
                GCPolicy.from_settings(ctx.settings),
                ctx.metrics,
                events=lambda: ctx.events.for_system("gc"),
            )
            sweeper = asyncio.create_task(
                run_periodically(collector, ctx.settings.gc_interval), name="gc"
            )
        dispatcher: Dispatcher | None = None
        dispatching: asyncio.Task[None] | None = None
        if ctx.settings.events.dispatch:
            dispatcher = Dispatcher(
                ctx.db, ctx.settings.events, ctx.metrics, ctx.secret_box, ctx.webhook_sender
            )
            ctx.events.subscribe(dispatcher.wake)
            dispatching = asyncio.create_task(dispatcher.run_forever(), name="events")
        try:
            yield
        finally:
            for task in (sweeper, dispatching):
                if task is not None:
                    # A sweep cut short rolls back its open transaction; every
                    # committed step is consistent on its own (see gc.py). A
                    # dispatch cut short leaves its events pending (redelivered).
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if dispatcher is not None:
                await dispatcher.close()
            await ctx.webhook_sender.aclose()
            await ctx.auth.stop()
            await ctx.http.aclose()
            await ctx.db.disconnect()

    middleware = cors_middleware(
        ctx.settings.cors_origins,
        ["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
        ["Docker-Content-Digest", "Link"],
    )
    app = Starlette(
        routes=[
            *base.routes,
            *catalog.routes,
            *uploads.routes,
            *blobs.routes,
            *manifests.routes,
            *tags.routes,
            *referrers.routes,
            *dashboard.routes,
            *webhooks.routes,
            *ui.build_routes(ctx.settings),
        ],
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            RegistryError: _registry_error,
            HTTPException: _http_error,
            StorageUnavailable: _storage_unavailable,
        },
    )
    app.state.ctx = ctx
    app.add_middleware(
        ObserveMiddleware,
        requests=ctx.metrics.requests,
        latency=ctx.metrics.latency,
        crash_response=lambda: error_response("INTERNAL"),
        logger=logger,
        extra_headers=[API_VERSION_HEADER],
    )
    # Outermost, so that even the 500 of a crash carries the headers; the
    # dashboard API's answers are private listings: never stored by a cache.
    app.add_middleware(SecurityHeadersMiddleware, no_store=("/api/",))
    return app
