"""User management for administrators.

``GET/POST /admin/users``, ``DELETE /admin/users/{id}``, and for a user who
lost a password or a device: ``POST /admin/users/{id}/password`` (a new
password) and ``POST /admin/users/{id}/revoke``; both end every session and
refresh token of that user.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.argon2_slots import Argon2BusyError
from services.auth.context import AuthContext
from services.auth.http import api_error, json_object
from services.auth.ids import path_id
from services.auth.passwords import password_problem
from services.auth.routes.credentials import busy, revoked_json
from services.auth.sessions import SessionCaller, session_endpoint
from services.auth.store import User, UserExistsError
from shared.audit import audit
from shared.names import is_valid_username

__all__ = ["routes", "user_json"]


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "admin": user.is_admin,
        "created_at": user.created_at,
    }


@session_endpoint(admin=True)
async def list_users(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    return JSONResponse({"users": [user_json(u) for u in await ctx.store.list_users()]})


@session_endpoint(admin=True)
async def create_user(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    body = await json_object(request, "{username, password, admin}")
    if not isinstance(body, dict):
        return body
    username, password, admin = body.get("username"), body.get("password"), body.get("admin", False)
    if not isinstance(username, str) or not is_valid_username(username):
        return api_error(
            400, "BAD_REQUEST", "username must be 2-64 lowercase letters, digits, '.', '_' or '-'"
        )
    problem = password_problem(password)
    if problem is not None:
        return api_error(400, "BAD_REQUEST", problem)
    assert isinstance(password, str)
    if not isinstance(admin, bool):
        return api_error(400, "BAD_REQUEST", "admin must be true or false")
    try:
        password_hash = await ctx.authenticator.hash_password(password)
        user = await ctx.store.create_user(username, password_hash, admin=admin)
    except Argon2BusyError:
        return busy()
    except UserExistsError as exc:
        return api_error(409, "CONFLICT", str(exc))
    audit("user_created", by=caller.user.username, user=user.username, admin=admin)
    return JSONResponse(user_json(user), status_code=201)


@session_endpoint(admin=True)
async def delete_user(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    user_id = path_id(request, "user_id")
    if user_id is None or not await ctx.store.delete_user(user_id):
        return api_error(404, "NOT_FOUND", "no such user")
    audit("user_deleted", by=caller.user.username, user_id=user_id)
    return Response(status_code=204)


@session_endpoint(admin=True)
async def reset_password(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    user_id = path_id(request, "user_id")
    body = await json_object(request, "{new_password}")
    if not isinstance(body, dict):
        return body
    password = body.get("new_password")
    problem = password_problem(password)
    if problem is not None:
        return api_error(400, "BAD_REQUEST", "new_" + problem)
    assert isinstance(password, str)
    if user_id is None or await ctx.store.user_by_id(user_id) is None:
        return api_error(404, "NOT_FOUND", "no such user")
    try:
        password_hash = await ctx.authenticator.hash_password(password)
    except Argon2BusyError:
        return busy()
    revoked = await ctx.store.change_password(user_id, password_hash)
    if revoked is None:
        return api_error(404, "NOT_FOUND", "no such user")
    audit(
        "password_reset",
        by=caller.user.username,
        user_id=user_id,
        sessions=revoked.sessions,
        refresh_tokens=revoked.refresh_tokens,
    )
    return Response(status_code=204)


@session_endpoint(admin=True)
async def revoke_user(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    user_id = path_id(request, "user_id")
    if user_id is None or await ctx.store.user_by_id(user_id) is None:
        return api_error(404, "NOT_FOUND", "no such user")
    revoked = await ctx.store.revoke_everything(user_id)
    audit(
        "user_revoked",
        by=caller.user.username,
        user_id=user_id,
        sessions=revoked.sessions,
        refresh_tokens=revoked.refresh_tokens,
    )
    return JSONResponse(revoked_json(revoked))


routes = [
    Route("/admin/users", list_users, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{user_id}", delete_user, methods=["DELETE"]),
    Route("/admin/users/{user_id}/password", reset_password, methods=["POST"]),
    Route("/admin/users/{user_id}/revoke", revoke_user, methods=["POST"]),
]
