"""Resolving the session behind an ``Authorization: Bearer`` header.

Used by every `/api/` and `/admin/` endpoint: the session JWT must verify
with our keys, carry the session audience, and name a session that is still
active in the database (logout and user deletion revoke at once here).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.auth.context import AuthContext
from services.auth.http import api_error, bearer_token
from services.auth.store import User
from shared.tokens import SessionClaims, TokenError

__all__ = ["SessionCaller", "require_session"]


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
    if admin and not user.is_admin:
        return api_error(403, "DENIED", "administrator rights are required")
    return SessionCaller(claims, user)
