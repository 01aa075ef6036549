"""Dashboard and CLI sessions: ``POST /api/login``, ``POST /api/logout``, ``GET /api/session``.

Also ``GET /api/sessions/revoked``, which the registry polls so that a revoked
session stops working there within its poll interval.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.accounts import SA_TOKEN_PREFIX
from services.auth.context import AuthContext
from services.auth.guard import check_rate, record_failure
from services.auth.http import api_error, client_address
from services.auth.sessions import SessionCaller, session_endpoint
from shared.audit import audit

__all__ = ["routes"]


async def login(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    client = client_address(request, ctx.settings.trusted_proxies)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return api_error(400, "BAD_REQUEST", "expected a JSON object {username, password}")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        return api_error(400, "BAD_REQUEST", "username and password must be strings")
    limited = check_rate(ctx, "login", client, username)
    if limited is not None:
        return limited
    # A service-account token is never a password: it must not open a session.
    principal = (
        None
        if password.startswith(SA_TOKEN_PREFIX)
        else await ctx.authenticator.password(username, password)
    )
    if principal is None:
        record_failure(ctx, "login", client, username)
        return api_error(401, "UNAUTHORIZED", "wrong username or password")
    user = principal.user
    session = await ctx.store.create_session(user.id, ctx.settings.session_ttl)
    token, claims = ctx.issuer.issue_session_token(
        subject=user.id,
        username=user.username,
        admin=user.is_admin,
        session_id=session.id,
        ttl_seconds=ctx.settings.session_ttl,
        audience=ctx.settings.session_audience,
    )
    ctx.metrics.tokens_issued.inc(kind="session")
    audit("session_created", user=user.username, user_id=user.id, sid=session.id, client=client)
    return JSONResponse(
        {
            "token": token,
            "token_type": "Bearer",
            "expires_in": ctx.settings.session_ttl,
            "expires_at": claims.expires_at,
            "user": {"id": user.id, "username": user.username, "admin": user.is_admin},
        },
        headers={"Cache-Control": "no-store"},
    )


@session_endpoint()
async def logout(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    await ctx.store.revoke_session(caller.claims.session_id)
    audit("session_revoked", user=caller.user.username, sid=caller.claims.session_id)
    return Response(status_code=204)


@session_endpoint()
async def session_info(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    return JSONResponse(
        {
            "user_id": caller.user.id,
            "username": caller.user.username,
            "admin": caller.user.is_admin,
            "session_id": caller.claims.session_id,
            "expires_at": caller.claims.expires_at,
        }
    )


async def revoked_sessions(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    return JSONResponse(
        {"revoked": await ctx.store.revoked_session_ids()}, headers={"Cache-Control": "no-store"}
    )


routes = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/session", session_info, methods=["GET"]),
    Route("/api/sessions/revoked", revoked_sessions, methods=["GET"]),
]
