"""A user's own credentials: refresh tokens, revoking everything, changing the password.

``GET /api/refresh-tokens``, ``DELETE /api/refresh-tokens/{id}``,
``POST /api/sessions/revoke-all``, ``POST /api/password``. Each needs the
caller's live session. Revoked sessions reach the registry through its poll
of the revocation list (`internal`); refresh tokens stop at once, as only this
service accepts them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.accounts import Principal
from services.auth.argon2_slots import Argon2BusyError
from services.auth.context import AuthContext
from services.auth.guard import check_credentials
from services.auth.http import api_error, client_address, iso_time, json_object
from services.auth.ids import path_id
from services.auth.passwords import MAX_PASSWORD_BYTES, password_problem
from services.auth.sessions import SessionCaller, session_endpoint
from services.auth.store import RefreshToken, Revoked
from shared.audit import audit

__all__ = ["busy", "refresh_token_json", "revoked_json", "routes"]


def refresh_token_json(token: RefreshToken) -> dict[str, str | None]:
    return {
        "id": token.id,
        "client_id": token.client_id,
        "service": token.service,
        "created_at": iso_time(token.created_at),
        "expires_at": iso_time(token.expires_at),
        "last_used_at": iso_time(token.last_used_at),
    }


def revoked_json(revoked: Revoked) -> dict[str, int]:
    return {
        "revoked_sessions": revoked.sessions,
        "revoked_refresh_tokens": revoked.refresh_tokens,
    }


def busy() -> JSONResponse:
    return api_error(
        503, "UNAVAILABLE", "too many password checks at once; retry later", {"Retry-After": "1"}
    )


@session_endpoint()
async def list_refresh_tokens(
    request: Request, ctx: AuthContext, caller: SessionCaller
) -> Response:
    tokens = await ctx.store.list_refresh_tokens(caller.user.id)
    return JSONResponse({"refresh_tokens": [refresh_token_json(t) for t in tokens]})


@session_endpoint()
async def revoke_refresh_token(
    request: Request, ctx: AuthContext, caller: SessionCaller
) -> Response:
    token_id = path_id(request, "token_id")
    if token_id is None or not await ctx.store.revoke_refresh_token(caller.user.id, token_id):
        return api_error(404, "NOT_FOUND", "no such refresh token")
    audit("refresh_token_revoked", user=caller.user.username, id=token_id)
    return Response(status_code=204)


@session_endpoint()
async def revoke_all(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    revoked = await ctx.store.revoke_everything(caller.user.id)
    audit(
        "user_revoked",
        by=caller.user.username,
        user=caller.user.username,
        sessions=revoked.sessions,
        refresh_tokens=revoked.refresh_tokens,
    )
    return JSONResponse(revoked_json(revoked))


@session_endpoint()
async def change_password(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    body = await json_object(request, "{current_password, new_password}")
    if not isinstance(body, dict):
        return body
    current, new = body.get("current_password"), body.get("new_password")
    if not isinstance(current, str) or len(current.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return api_error(400, "BAD_REQUEST", "current_password must be the current password")
    problem = password_problem(new)
    if problem is not None:
        return api_error(400, "BAD_REQUEST", "new_" + problem)
    assert isinstance(new, str)  # password_problem refuses anything else
    user = caller.user
    client = client_address(request, ctx.settings.trusted_proxies)

    async def check() -> Principal | None:
        return await ctx.authenticator.password(user.username, current)

    # The current password is a password like any other: guessing it is limited.
    result = await check_credentials(
        ctx, endpoint="password", client=client, account=user.username, style="api", check=check
    )
    if isinstance(result, JSONResponse):
        return result
    if result is None or result.user.id != user.id:
        return api_error(403, "DENIED", "the current password is wrong")
    try:
        new_hash = await ctx.authenticator.hash_password(new)
    except Argon2BusyError:
        return busy()
    revoked = await ctx.store.change_password(
        user.id, new_hash, expected_hash=result.user.password_hash
    )
    if revoked is None:
        return api_error(409, "CONFLICT", "the password changed meanwhile; sign in again")
    audit(
        "password_changed",
        by=user.username,
        user=user.username,
        sessions=revoked.sessions,
        refresh_tokens=revoked.refresh_tokens,
    )
    return Response(status_code=204)


routes = [
    Route("/api/refresh-tokens", list_refresh_tokens, methods=["GET"]),
    Route("/api/refresh-tokens/{token_id}", revoke_refresh_token, methods=["DELETE"]),
    Route("/api/sessions/revoke-all", revoke_all, methods=["POST"]),
    Route("/api/password", change_password, methods=["POST"]),
]
