"""Resolving the session behind an ``Authorization: Bearer`` header.

Used by every `/api/` and `/admin/` endpoint: the session JWT must verify
with our keys, carry the session audience, and name a session that is still
active in the database (logout and user deletion revoke at once here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.auth.context import AuthContext
from services.auth.http import api_error, bearer_token
from services.auth.store import User
from shared.requestuser import identify_user
from shared.tokens import SessionClaims, TokenError

__all__ = ["SessionCaller", "require_session", "session_endpoint"]


@dataclass(frozen=True, slots=True)
class SessionCaller:
    claims: SessionClaims
    user: User


async def require_session(request: Request, *, admin: bool = False) -> SessionCaller | JSONResponse:
    """The caller's live session, or the JSON error response to return."""
    ctx: AuthContext = request.app.state.ctx
    token = bearer_token(request)
    challenge = {"WWW-Authenticate": 'Bearer realm="ecloud"'}
    if token is None:
        return api_error(401, "UNAUTHORIZED", "a session token is required", challenge)
    try:
        claims = ctx.verifier.verify_session_token(token, ctx.settings.session_audience)
    except TokenError as exc:
        return api_error(401, "UNAUTHORIZED", str(exc), challenge)
    if not await ctx.store.session_is_active(claims.session_id, claims.subject):
        return api_error(401, "UNAUTHORIZED", "the session has ended", challenge)
    user = await ctx.store.user_by_id(claims.subject)
    if user is None:
        return api_error(401, "UNAUTHORIZED", "the session has ended", challenge)
    identify_user(user_id=user.id, username=user.username)
    if admin and not user.is_admin:
        return api_error(403, "DENIED", "administrator rights are required")
    return SessionCaller(claims, user)


SessionHandler = Callable[[Request, AuthContext, SessionCaller], Awaitable[Response]]


def session_endpoint(
    *, admin: bool = False
) -> Callable[[SessionHandler], Callable[[Request], Awaitable[Response]]]:
    """Turn ``handler(request, ctx, caller)`` into an endpoint that first requires a session."""

    def decorate(handler: SessionHandler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            caller = await require_session(request, admin=admin)
            if not isinstance(caller, SessionCaller):
                return caller
            return await handler(request, request.app.state.ctx, caller)

        return endpoint

    return decorate
