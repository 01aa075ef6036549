"""Rate-limit checks shared by the login and token endpoints."""

from __future__ import annotations

from starlette.responses import JSONResponse

from services.auth.context import AuthContext
from services.auth.http import token_error
from shared.audit import audit

__all__ = ["check_rate", "record_failure"]


def _keys(client: str, account: str | None) -> list[str]:
    keys = [f"ip:{client}"]
    if account:
        keys.append(f"acct:{account.lower()[:200]}")
    return keys


def check_rate(
    ctx: AuthContext, endpoint: str, client: str, account: str | None
) -> JSONResponse | None:
    """429 when the caller sent too many requests or failed too often; None to go on."""
    for key in _keys(client, account):
        failures = ctx.failure_limiter.peek(key)
        if not failures.allowed:
            return _too_many(ctx, endpoint, client, "failures", failures.headers("failures"))
    for key in _keys(client, account):
        decision = ctx.request_limiter.hit(key)
        if not decision.allowed:
            return _too_many(ctx, endpoint, client, "requests", decision.headers("requests"))
    return None


def record_failure(ctx: AuthContext, endpoint: str, client: str, account: str | None) -> None:
    ctx.metrics.auth_failures.inc(endpoint=endpoint)
    for key in _keys(client, account):
        ctx.failure_limiter.hit(key)
    audit("auth_failed", endpoint=endpoint, account=(account or "")[:200], client=client)


def _too_many(
    ctx: AuthContext, endpoint: str, client: str, limit: str, headers: dict[str, str]
) -> JSONResponse:
    ctx.metrics.rate_limited.inc(limit=limit)
    audit("rate_limited", endpoint=endpoint, limit=limit, client=client)
    return token_error(
        429,
        "TOOMANYREQUESTS",
        "too many requests; retry later",
        "slow_down",
        headers,
    )
