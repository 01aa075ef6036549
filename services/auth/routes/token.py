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

from services.auth.accounts import SA_TOKEN_PREFIX, Principal
from services.auth.context import AuthContext
from services.auth.guard import admit_request, check_credentials
from services.auth.http import basic_credentials, client_address, token_error
from shared.audit import audit
from shared.scopes import Scope, format_scopes, grant, parse_scopes

__all__ = ["routes"]

_TRUE = {"true", "1", "yes"}
NO_STORE = {"Cache-Control": "no-store"}


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


def _wrong_credentials() -> JSONResponse:
    return token_error(
        401, "UNAUTHORIZED", "authentication required: wrong credentials", "invalid_grant", NO_STORE
    )


async def _basic(
    ctx: AuthContext, client: str, username: str, secret: str
) -> Principal | JSONResponse | None:
    """A password or an ``ecloud_`` token, inside the failure budgets (`guard`)."""
    is_token = secret.startswith(SA_TOKEN_PREFIX)
    return await check_credentials(
        ctx,
        endpoint="token",
        client=client,
        # Tokens are never counted per account: usernames are public, and a
        # username in front of a token is whatever the client typed.
        account=None if is_token else username,
        style="token",
        check=lambda: ctx.authenticator.basic(username, secret),
    )


async def token_get(request: Request) -> Response:
    ctx: AuthContext = request.app.state.ctx
    params = request.query_params
    service = params.get("service") or ctx.settings.service
    if service != ctx.settings.service:
        return _unknown_service(service)
    client = client_address(request, ctx.settings.trusted_proxies)
    refused = await admit_request(ctx, "token", client, "token")
    if refused is not None:
        return refused
    credentials = basic_credentials(request)
    principal = None
    if credentials is None and request.headers.get("authorization"):
        result = await check_credentials(
            ctx, endpoint="token", client=client, account=None, style="token", check=_nobody
        )
        if isinstance(result, JSONResponse):
            return result
        return token_error(
            401, "UNAUTHORIZED", "malformed Authorization header", "invalid_client", NO_STORE
        )
    if credentials is not None:
        # Only a caller who presents credentials counts against an account: an
        # anonymous `account=` parameter must not let anyone exhaust a victim's budget.
        result = await _basic(ctx, client, *credentials)
        if result is None:
            return _wrong_credentials()
        if isinstance(result, JSONResponse):
            return result
        principal = result
    token, _granted, issued_at = _issue(ctx, principal, params.getlist("scope"), client)
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": ctx.settings.token_ttl,
        "issued_at": _rfc3339(issued_at),
    }
    if principal is not None and params.get("offline_token", "").lower() in _TRUE:
        client_id = params.get("client_id") or "unknown"
        if "\x00" in client_id:
            return _bad_request("client_id must not contain NUL")
        issued = await ctx.store.create_refresh_token(
            user_id=principal.user.id,
            sa_token_id=principal.sa_token_id,
            client_id=client_id,
            service=service,
            ttl_seconds=ctx.settings.refresh_ttl,
        )
        ctx.metrics.tokens_issued.inc(kind="refresh")
        body["refresh_token"] = issued.secret
    return JSONResponse(body, headers=NO_STORE)


async def _nobody() -> Principal | None:
    return None


def _bad_request(message: str) -> JSONResponse:
    return token_error(400, "UNSUPPORTED", message, "invalid_request")


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
    refused = await admit_request(ctx, "token", client, "token")
    if refused is not None:
        return refused
    fields = await _form_fields(request)
    if fields is None:
        return _bad_request("expected a small application/x-www-form-urlencoded body")
    if any("\x00" in value for value in fields.values()):
        return _bad_request("form fields must not contain NUL")
    grant_type, client_id = fields.get("grant_type", ""), fields.get("client_id", "")
    service = fields.get("service", "")
    if not client_id or not service:
        return _bad_request("client_id and service are required")
    if service != ctx.settings.service:
        return _unknown_service(service)
    refresh_token = None
    if grant_type == "password":
        result = await _basic(ctx, client, fields.get("username", ""), fields.get("password", ""))
    elif grant_type == "refresh_token":
        presented = refresh_token = fields.get("refresh_token", "")

        async def check() -> Principal | None:
            if not presented or len(presented) > 200:
                return None
            stored = await ctx.store.find_refresh_token(presented)
            return await ctx.authenticator.refresh(stored) if stored else None

        result = await check_credentials(
            ctx, endpoint="token", client=client, account=None, style="token", check=check
        )
    else:
        return token_error(
            400,
            "UNSUPPORTED",
            "grant_type must be password or refresh_token",
            "unsupported_grant_type",
        )
    if result is None:
        return _wrong_credentials()
    if isinstance(result, JSONResponse):
        return result
    principal = result
    if grant_type == "password" and fields.get("access_type") == "offline":
        issued = await ctx.store.create_refresh_token(
            user_id=principal.user.id,
            sa_token_id=principal.sa_token_id,
            client_id=client_id,
            service=service,
            ttl_seconds=ctx.settings.refresh_ttl,
        )
        ctx.metrics.tokens_issued.inc(kind="refresh")
        refresh_token = issued.secret
    token, granted, issued_at = _issue(ctx, principal, [fields.get("scope", "")], client)
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "scope": format_scopes(granted),
        "expires_in": ctx.settings.token_ttl,
        "issued_at": _rfc3339(issued_at),
    }
    # A refresh grant answers the same refresh token: Docker breaks when it rotates.
    if refresh_token:
        body["refresh_token"] = refresh_token
    return JSONResponse(body, headers=NO_STORE)


routes = [
    Route("/v2/token", token_get, methods=["GET"]),
    Route("/v2/token", token_post, methods=["POST"]),
]
