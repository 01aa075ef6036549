"""``GET /v2/`` (the version check) and the probes ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.registry.access import authenticate_user
from services.registry.context import RegistryContext
from services.registry.storage.base import PathNotFound, StorageError

__all__ = ["routes"]


async def version_check(request: Request) -> Response:
    # A token without a subject is not a login: a logged-out client must see 401.
    await authenticate_user(request)
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
    return PlainTextResponse(
        ctx.metrics.registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


routes = [
    Route("/v2/", version_check, methods=["GET", "HEAD"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
