"""Endpoints for the registries only: ``GET /internal/sessions/revoked``.

The registry polls the ids of sessions revoked before their expiry, so that a
logout, a password change or a revocation stops a session there within its
poll interval. The list says who logged out when, so it is kept off the
public side: it lives outside the paths the Ingress publishes (``/v2/token``,
``/api``, ``/admin``, ``/.well-known``), the NetworkPolicy lets only the
ingress controller and the registry reach the pod, and a request that arrived
through a trusted proxy (a peer in ``ECLOUD_TRUSTED_PROXIES`` with an
``X-Forwarded-For`` header, which ingress-nginx always adds) is answered 404
exactly like an unknown path, in case a proxy ever forwards more than it
should.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.context import AuthContext
from services.auth.http import api_error, forwarded_by_trusted_proxy

__all__ = ["REVOKED_SESSIONS_PATH", "routes"]

REVOKED_SESSIONS_PATH = "/internal/sessions/revoked"


async def revoked_sessions(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    if forwarded_by_trusted_proxy(request, ctx.settings.trusted_proxies):
        return api_error(404, "NOT_FOUND", "no such endpoint")
    return JSONResponse(
        {"revoked": await ctx.store.revoked_session_ids()}, headers={"Cache-Control": "no-store"}
    )


routes = [Route(REVOKED_SESSIONS_PATH, revoked_sessions, methods=["GET"])]
