"""Dashboard and CLI sessions.

``POST /api/login`` (optionally with a refresh token), ``POST /api/session/refresh``
(a new session from that refresh token), ``POST /api/logout``, ``GET /api/session``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.accounts import SA_TOKEN_PREFIX, Principal
from services.auth.context import AuthContext
from services.auth.guard import admit_request, check_credentials
from services.auth.http import api_error, client_address, iso_time, json_object
from services.auth.passwords import MAX_PASSWORD_BYTES
from services.auth.sessions import SessionCaller, session_endpoint
from services.auth.store import User
from shared.audit import audit

__all__ = ["routes"]

NO_STORE = {"Cache-Control": "no-store"}
_DEFAULT_CLIENT_ID = "login"


def _unauthorized(message: str) -> JSONResponse:
    return api_error(401, "UNAUTHORIZED", message, NO_STORE)


async def _issue_session(ctx: AuthContext, user: User, client: str) -> dict[str, Any]:
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
    return {
        "token": token,
        "token_type": "Bearer",
        "expires_in": ctx.settings.session_ttl,
        "expires_at": claims.expires_at,
    }


def _login_fields(body: dict[str, Any]) -> tuple[str, str, bool, str] | JSONResponse:
    username, password = body.get("username"), body.get("password")
    refresh, client_id = body.get("refresh", False), body.get("client_id", _DEFAULT_CLIENT_ID)
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        return api_error(400, "BAD_REQUEST", "username and password must be strings")
    if len(username) > 200:
        return api_error(400, "BAD_REQUEST", "username is too long")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return api_error(400, "BAD_REQUEST", f"password must be at most {MAX_PASSWORD_BYTES} bytes")
    if not isinstance(refresh, bool):
        return api_error(400, "BAD_REQUEST", "refresh must be true or false")
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 64:
        return api_error(400, "BAD_REQUEST", "client_id must be a string of 1-64 characters")
    return username, password, refresh, client_id


async def login(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    client = client_address(request, ctx.settings.trusted_proxies)
    refused = await admit_request(ctx, "login", client, "api")
    if refused is not None:
        return refused
    body = await json_object(request, "{username, password, refresh}")
    if not isinstance(body, dict):
        return body
    fields = _login_fields(body)
    if isinstance(fields, JSONResponse):
        return fields
    username, password, want_refresh, client_id = fields
    # A service-account token is never a password: it must not open a session,
    # and like every token it counts per address only, never against the account.
    is_token = password.startswith(SA_TOKEN_PREFIX)

    async def check() -> Principal | None:
        return None if is_token else await ctx.authenticator.password(username, password)

    result = await check_credentials(
        ctx,
        endpoint="login",
        client=client,
        account=None if is_token else username,
        style="api",
        check=check,
    )
    if result is None:
        return _unauthorized("wrong username or password")
    if isinstance(result, JSONResponse):
        return result
    user = result.user
    answer = await _issue_session(ctx, user, client)
    answer["user"] = {"id": user.id, "username": user.username, "admin": user.is_admin}
    if want_refresh:
        issued = await ctx.store.create_refresh_token(
            user_id=user.id,
            sa_token_id=None,
            client_id=client_id,
            service=ctx.settings.service,
            ttl_seconds=ctx.settings.refresh_ttl,
        )
        ctx.metrics.tokens_issued.inc(kind="refresh")
        audit("refresh_token_created", user=user.username, id=issued.id, client=client)
        answer["refresh_token"] = issued.secret
        answer["refresh_expires_at"] = iso_time(issued.expires_at)
    return JSONResponse(answer, headers=NO_STORE)


async def refresh_session(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    client = client_address(request, ctx.settings.trusted_proxies)
    refused = await admit_request(ctx, "session_refresh", client, "api")
    if refused is not None:
        return refused
    body = await json_object(request, "{refresh_token}")
    if not isinstance(body, dict):
        return body
    secret = body.get("refresh_token")
    if not isinstance(secret, str) or not secret:
        return api_error(400, "BAD_REQUEST", "refresh_token must be a string")

    async def check() -> Principal | None:
        stored = await ctx.store.find_refresh_token(secret) if len(secret) <= 200 else None
        # A refresh token obtained with a service-account token never becomes a session.
        if stored is None or stored.sa_token_id is not None:
            return None
        return await ctx.authenticator.refresh(stored)

    result = await check_credentials(
        ctx, endpoint="session_refresh", client=client, account=None, style="api", check=check
    )
    if result is None:
        return _unauthorized("the refresh token is unknown, expired or revoked")
    if isinstance(result, JSONResponse):
        return result
    return JSONResponse(await _issue_session(ctx, result.user, client), headers=NO_STORE)


@session_endpoint()
async def logout(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    body = await json_object(request, "{refresh_token}", optional=True)
    if not isinstance(body, dict):
        return body
    secret = body.get("refresh_token")
    if secret is not None and not isinstance(secret, str):
        return api_error(400, "BAD_REQUEST", "refresh_token must be a string")
    await ctx.store.revoke_session(caller.claims.session_id)
    audit("session_revoked", user=caller.user.username, sid=caller.claims.session_id)
    if secret:
        token_id = await ctx.store.refresh_token_id(secret) if len(secret) <= 200 else None
        # Only the caller's own: anyone else's stays valid (and nothing says it exists).
        if token_id and await ctx.store.revoke_refresh_token(caller.user.id, token_id):
            audit("refresh_token_revoked", user=caller.user.username, id=token_id)
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


routes = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/session/refresh", refresh_session, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/session", session_info, methods=["GET"]),
]
