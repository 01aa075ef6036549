"""User management for administrators: ``GET/POST /admin/users``, ``DELETE /admin/users/{id}``."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.context import AuthContext
from services.auth.http import api_error
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
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return api_error(400, "BAD_REQUEST", "expected a JSON object {username, password, admin}")
    username, password, admin = body.get("username"), body.get("password"), body.get("admin", False)
    if not isinstance(username, str) or not is_valid_username(username):
        return api_error(
            400, "BAD_REQUEST", "username must be 2-64 lowercase letters, digits, '.', '_' or '-'"
        )
    if not isinstance(password, str) or len(password) < 8:
        return api_error(400, "BAD_REQUEST", "password must be at least 8 characters")
    if not isinstance(admin, bool):
        return api_error(400, "BAD_REQUEST", "admin must be true or false")
    try:
        password_hash = await run_in_threadpool(ctx.passwords.hash, password)
        user = await ctx.store.create_user(username, password_hash, admin=admin)
    except UserExistsError as exc:
        return api_error(409, "CONFLICT", str(exc))
    audit("user_created", by=caller.user.username, user=user.username, admin=admin)
    return JSONResponse(user_json(user), status_code=201)


@session_endpoint(admin=True)
async def delete_user(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    user_id = request.path_params["user_id"]
    if not await ctx.store.delete_user(user_id):
        return api_error(404, "NOT_FOUND", "no such user")
    audit("user_deleted", by=caller.user.username, user_id=user_id)
    return Response(status_code=204)


routes = [
    Route("/admin/users", list_users, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{user_id}", delete_user, methods=["DELETE"]),
]
