"""Service accounts of the caller and their tokens.

``GET/POST /api/service-accounts``, ``GET/DELETE /api/service-accounts/{id}``,
``PUT /api/service-accounts/{id}/scopes``, ``GET/POST /api/service-accounts/{id}/tokens``,
``DELETE /api/tokens/{id}``. Every one needs the caller's live session; another
user's account or token is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.context import AuthContext
from services.auth.http import api_error, iso_time, json_object
from services.auth.ids import path_id
from services.auth.service_accounts import (
    LimitReachedError,
    NameTakenError,
    SaToken,
    ServiceAccount,
    normalize_scopes,
    parse_expiry,
    validate_name,
)
from services.auth.sessions import SessionCaller, session_endpoint
from shared.audit import audit
from shared.scopes import ScopeError

__all__ = ["account_json", "routes", "token_json"]

_NO_STORE = {"Cache-Control": "no-store"}


def account_json(account: ServiceAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "scopes": [str(s) for s in account.scopes],
        "created_at": iso_time(account.created_at),
        "updated_at": iso_time(account.updated_at),
    }


def token_json(token: SaToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "service_account_id": token.service_account_id,
        "name": token.name,
        "hint": token.hint,
        "created_at": iso_time(token.created_at),
        "expires_at": iso_time(token.expires_at),
        "last_used_at": iso_time(token.last_used_at),
    }


def _not_found(what: str) -> JSONResponse:
    return api_error(404, "NOT_FOUND", f"no such {what}")


@session_endpoint()
async def list_accounts(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    accounts = await ctx.service_accounts.list_accounts(caller.user.id)
    return JSONResponse({"service_accounts": [account_json(a) for a in accounts]})


@session_endpoint()
async def create_account(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    body = await json_object(request, "{name, scopes}")
    if not isinstance(body, dict):
        return body
    try:
        name = validate_name(body.get("name"))
        scopes = normalize_scopes(body.get("scopes"), caller.user)
    except ValueError as exc:  # ScopeError included
        return api_error(400, "BAD_REQUEST", str(exc))
    try:
        account = await ctx.service_accounts.create(caller.user, name, scopes)
    except NameTakenError as exc:
        return api_error(409, "CONFLICT", str(exc))
    except LimitReachedError as exc:
        return api_error(409, "LIMIT_REACHED", str(exc))
    audit(
        "service_account_created",
        user=caller.user.username,
        sa=account.id,
        scopes=[str(s) for s in scopes],
    )
    return JSONResponse(account_json(account), status_code=201)


@session_endpoint()
async def get_account(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    account_id = path_id(request, "sa_id")
    account = (
        None if account_id is None else await ctx.service_accounts.get(caller.user.id, account_id)
    )
    if account is None:
        return _not_found("service account")
    return JSONResponse(account_json(account))


@session_endpoint()
async def delete_account(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    account_id = path_id(request, "sa_id")
    if account_id is None or not await ctx.service_accounts.delete(caller.user.id, account_id):
        return _not_found("service account")
    audit("service_account_deleted", user=caller.user.username, sa=account_id)
    return Response(status_code=204)


@session_endpoint()
async def set_scopes(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    account_id = path_id(request, "sa_id")
    if account_id is None or await ctx.service_accounts.get(caller.user.id, account_id) is None:
        return _not_found("service account")
    body = await json_object(request, "{scopes}")
    if not isinstance(body, dict):
        return body
    try:
        scopes = normalize_scopes(body.get("scopes"), caller.user)
    except ScopeError as exc:
        return api_error(400, "BAD_REQUEST", str(exc))
    account = await ctx.service_accounts.set_scopes(caller.user.id, account_id, scopes)
    if account is None:
        return _not_found("service account")
    audit(
        "service_account_scopes_set",
        user=caller.user.username,
        sa=account_id,
        scopes=[str(s) for s in scopes],
    )
    return JSONResponse(account_json(account))


@session_endpoint()
async def list_tokens(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    account_id = path_id(request, "sa_id")
    tokens = (
        None
        if account_id is None
        else await ctx.service_accounts.list_tokens(caller.user.id, account_id)
    )
    if tokens is None:
        return _not_found("service account")
    return JSONResponse({"tokens": [token_json(t) for t in tokens]})


@session_endpoint()
async def create_token(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    account_id = path_id(request, "sa_id")
    body = await json_object(request, "{expires_in, name}", optional=True)
    if not isinstance(body, dict):
        return body
    try:
        lifetime = parse_expiry(body.get("expires_in"))
        name = validate_name(body.get("name") or "token")
    except ValueError as exc:
        return api_error(400, "BAD_REQUEST", str(exc))
    if account_id is None:
        return _not_found("service account")
    try:
        issued = await ctx.service_accounts.create_token(caller.user.id, account_id, name, lifetime)
    except LimitReachedError as exc:
        return api_error(409, "LIMIT_REACHED", str(exc))
    if issued is None:
        return _not_found("service account")
    audit(
        "sa_token_created",
        user=caller.user.username,
        sa=account_id,
        token_id=issued.token.id,
        expires_at=issued.token.expires_at,
    )
    # The only time the secret leaves the server.
    return JSONResponse(
        {**token_json(issued.token), "token": issued.secret}, status_code=201, headers=_NO_STORE
    )


@session_endpoint()
async def revoke_token(request: Request, ctx: AuthContext, caller: SessionCaller) -> Response:
    token_id = path_id(request, "token_id")
    if token_id is None or not await ctx.service_accounts.revoke_token(caller.user.id, token_id):
        return _not_found("token")
    audit("sa_token_revoked", user=caller.user.username, token_id=token_id)
    return Response(status_code=204)


routes = [
    Route("/api/service-accounts", list_accounts, methods=["GET"]),
    Route("/api/service-accounts", create_account, methods=["POST"]),
    Route("/api/service-accounts/{sa_id}", get_account, methods=["GET"]),
    Route("/api/service-accounts/{sa_id}", delete_account, methods=["DELETE"]),
    Route("/api/service-accounts/{sa_id}/scopes", set_scopes, methods=["PUT"]),
    Route("/api/service-accounts/{sa_id}/tokens", list_tokens, methods=["GET"]),
    Route("/api/service-accounts/{sa_id}/tokens", create_token, methods=["POST"]),
    Route("/api/tokens/{token_id}", revoke_token, methods=["DELETE"]),
]
