"""The Docker token endpoint: ``GET /v2/token`` and the OAuth2 ``POST /v2/token``.

GET follows the Docker token authentication spec (Basic credentials, several
``scope`` parameters, ``offline_token``); POST follows the Docker OAuth2 token
spec (``grant_type=password`` or ``refresh_token``). No credentials on GET
yield a token with empty access; wrong credentials are a 401 on both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.auth.accounts import Principal
from services.auth.context import AuthContext
from services.auth.guard import check_rate, record_failure
from services.auth.http import basic_credentials, client_address, token_error
from shared.audit import audit
from shared.scopes import Scope, format_scopes, grant, parse_scopes

__all__ = ["routes"]

_TRUE = {"true", "1", "yes"}


def _rfc3339(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unknown_service(service: str) -> JSONResponse:
    return token_error(400, "UNSUPPORTED", f"unknown service {service[:100]!r}", "invalid_request")


def _issue(
    ctx: AuthContext,
    principal: Principal | None,
    scope_values: list[str],
    client: str,
) -> tuple[str, list[Scope], int]:
    requested, malformed = parse_scopes(scope_values)
    if principal is None:
        granted: list[Scope] = []
        subject, sa_id = "", None
    else:
        granted = grant(
            requested,
            user_id=principal.user.id,
            username=principal.user.username,
            sa_scopes=principal.sa_scopes,
        )
        subject, sa_id = principal.user.id, principal.service_account_id
    denied = _denied(requested, granted)
    if denied or malformed:
        audit(
            "scope_denied",
            user=principal.user.username if principal else "",
            sa=sa_id,
            denied=[str(s) for s in denied],
            malformed=[m[:200] for m in malformed],
            client=client,
        )
    token, claims = ctx.issuer.issue_registry_token(
        subject=subject,
        audience=ctx.settings.service,
        access=granted,
        ttl_seconds=ctx.settings.token_ttl,
        service_account=sa_id,
        username=principal.user.username if principal else None,
        service_account_name=principal.service_account_name if principal else None,
    )
    ctx.metrics.tokens_issued.inc(kind="registry")
    audit(
        "token_issued",
        user=principal.user.username if principal else "",
        user_id=subject,
        sa=sa_id,
        granted=[str(s) for s in granted],
        jti=claims.token_id,
        client=client,
    )
    return token, granted, claims.issued_at


def _denied(requested: list[Scope], granted: list[Scope]) -> list[Scope]:
    got = {(s.type, s.name): s.actions for s in granted}
    denied = []
    for scope in requested:
        missing = scope.actions - got.get((scope.type, scope.name), frozenset())
        if missing:
            denied.append(Scope(scope.type, scope.name, frozenset(missing)))
    return denied


async def token_get(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    params = request.query_params
    service = params.get("service") or ctx.settings.service
    if service != ctx.settings.service:
        return _unknown_service(service)
    client = client_address(request, ctx.settings.trusted_proxies)
    credentials = basic_credentials(request)
    if credentials is None and request.headers.get("authorization"):
        record_failure(ctx, "token", client, None)
        return token_error(401, "UNAUTHORIZED", "malformed Authorization header", "invalid_client")
    # Only a caller who presents credentials counts against an account: an
    # anonymous `account=` parameter must not let anyone exhaust a victim's budget.
    account = credentials[0] if credentials else None
    limited = check_rate(ctx, "token", client, account)
    if limited is not None:
        return limited
    principal = None
    if credentials is not None:
        principal = await ctx.authenticator.basic(*credentials)
        if principal is None:
            record_failure(ctx, "token", client, credentials[0])
            return token_error(
                401, "UNAUTHORIZED", "authentication required: wrong credentials", "invalid_grant"
            )
    token, _granted, issued_at = _issue(ctx, principal, params.getlist("scope"), client)
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": ctx.settings.token_ttl,
        "issued_at": _rfc3339(issued_at),
    }
    if principal is not None and params.get("offline_token", "").lower() in _TRUE:
        body["refresh_token"] = await ctx.store.create_refresh_token(
            user_id=principal.user.id,
            sa_token_id=principal.sa_token_id,
            client_id=params.get("client_id") or "unknown",
            service=service,
            ttl_seconds=ctx.settings.refresh_ttl,
        )
        ctx.metrics.tokens_issued.inc(kind="refresh")
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


MAX_FORM_BYTES = 64 * 1024


async def _form_fields(request: Request) -> dict[str, str] | None:
    """The OAuth2 form as a dict (first value wins); None when too large or not a form.

    Parsed here rather than with Starlette's form parser, which needs an extra
    package for what is a few lines of urlencoded text.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", ""):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


async def token_post(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    client = client_address(request, ctx.settings.trusted_proxies)
    fields = await _form_fields(request)
    if fields is None:
        return token_error(
            400,
            "UNSUPPORTED",
            "expected a small application/x-www-form-urlencoded body",
            "invalid_request",
        )
    grant_type, client_id = fields.get("grant_type", ""), fields.get("client_id", "")
    service = fields.get("service", "")
    if not client_id or not service:
        return token_error(
            400, "UNSUPPORTED", "client_id and service are required", "invalid_request"
        )
    if service != ctx.settings.service:
        return _unknown_service(service)
    if grant_type == "password":
        account = fields.get("username", "")
        limited = check_rate(ctx, "token", client, account)
        if limited is not None:
            return limited
        principal = await ctx.authenticator.basic(account, fields.get("password", ""))
        refresh_token = None
        if principal is not None and fields.get("access_type") == "offline":
            refresh_token = await ctx.store.create_refresh_token(
                user_id=principal.user.id,
                sa_token_id=principal.sa_token_id,
                client_id=client_id,
                service=service,
                ttl_seconds=ctx.settings.refresh_ttl,
            )
            ctx.metrics.tokens_issued.inc(kind="refresh")
    elif grant_type == "refresh_token":
        account = None
        limited = check_rate(ctx, "token", client, None)
        if limited is not None:
            return limited
        refresh_token = fields.get("refresh_token", "")
        stored = await ctx.store.find_refresh_token(refresh_token) if refresh_token else None
        principal = await ctx.authenticator.refresh(stored) if stored else None
        if principal is not None:
            account = principal.user.username
    else:
        return token_error(
            400,
            "UNSUPPORTED",
            "grant_type must be password or refresh_token",
            "unsupported_grant_type",
        )
    if principal is None:
        record_failure(ctx, "token", client, account)
        return token_error(
            401, "UNAUTHORIZED", "authentication required: wrong credentials", "invalid_grant"
        )
    token, granted, issued_at = _issue(ctx, principal, [fields.get("scope", "")], client)
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "scope": format_scopes(granted),
        "expires_in": ctx.settings.token_ttl,
        "issued_at": _rfc3339(issued_at),
    }
    if refresh_token:
        body["refresh_token"] = refresh_token
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


routes = [
    Route("/v2/token", token_get, methods=["GET"]),
    Route("/v2/token", token_post, methods=["POST"]),
]
