"""``GET /v2/`` (the version check) and the probes ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.registry.access import authenticate
from services.registry.context import RegistryContext
from services.registry.metadata.gc_queue import queue_depths
from services.registry.storage.base import PathNotFound, StorageError
from shared.metrics import CONTENT_TYPE

__all__ = ["routes"]

logger = logging.getLogger("ecloud.registry")


async def version_check(request: Request) -> Response:
    await authenticate(request)
    return JSONResponse({})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx: RegistryContext = request.app.state.ctx
    checks = {
        "database": await ctx.db.ping(),
        "keys": len(ctx.auth.key_source.keys) > 0,
        "storage": await _storage_reachable(ctx),
    }
    status = 200 if all(checks.values()) else 503
    return JSONResponse(
        {"status": "ok" if status == 200 else "unavailable", "checks": checks}, status
    )


async def _storage_reachable(ctx: RegistryContext) -> bool:
    """The backend answers (a missing path is an answer); an outage or refusal is not."""
    try:
        await ctx.storage.stat("blobs")
    except PathNotFound:
        return True
    except StorageError:
        return False
    return True


async def metrics(request: Request) -> Response:
    ctx: RegistryContext = request.app.state.ctx
    # The queues live in the database, shared by every process and replica:
    # read them now rather than count them in one process.
    try:
        for depth in await queue_depths(ctx.db, time.time()):
            ctx.metrics.gc_queue_depth.set(depth.due, queue=depth.queue, state="due")
            ctx.metrics.gc_queue_depth.set(depth.waiting, queue=depth.queue, state="waiting")
    except Exception as exc:  # a scrape still answers while the database is down
        logger.warning("cannot read the GC queue depth: %s", exc)
    return PlainTextResponse(ctx.metrics.registry.render(), media_type=CONTENT_TYPE)


routes = [
    Route("/v2/", version_check, methods=["GET", "HEAD"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
