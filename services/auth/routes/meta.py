"""Public keys, probes and metrics.

``/.well-known/jwks.json``, ``/healthz``, ``/readyz``, ``/metrics``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.auth.context import AuthContext
from shared.keys import jwks_document
from shared.metrics import CONTENT_TYPE

__all__ = ["routes"]


async def jwks(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    return JSONResponse(
        jwks_document(ctx.published_keys), headers={"Cache-Control": "public, max-age=60"}
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    if not await ctx.db.ping():
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    return PlainTextResponse(ctx.metrics.registry.render(), media_type=CONTENT_TYPE)


routes = [
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
