"""The rate-limit model of the login and token endpoints, applied around every credential check.

Budgets, all moving windows in `ratelimit.RateLimits` (shared by every replica
when the storage is Redis):

- ``requests``: every login/token request per client address;
- ``address-failures``: wrong credentials of any kind per client address;
- ``failures``: wrong passwords per (account, client address): the strict one
  (10 per 5 minutes by default), which stops guessing;
- ``account-failures``: wrong passwords per account from all addresses
  together, with a much higher ceiling, against guessing spread over many
  addresses.

Usernames are public (they are the namespaces), so a budget keyed by the
account alone is one an attacker can aim: 10 guesses from anywhere would lock
the owner out. Hence the strict budget is per (account, address), one address
can only ever spend a tenth of the account ceiling, and ``ecloud_`` tokens
and refresh tokens (256-bit random, nothing to guess) are never counted per
account, only per address.

A password check reserves its place in every budget before Argon2 runs (see
`ratelimit`), so parallel guesses cannot get past the limit, and runs in one of
the bounded `argon2_slots`; when those are full the answer is 503 with
``Retry-After``, never an unbounded queue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.responses import JSONResponse

from services.auth.accounts import Principal
from services.auth.argon2_slots import Argon2BusyError
from services.auth.http import api_error, token_error
from services.auth.ratelimit import (
    Budget,
    Policy,
    RateLimitUnavailableError,
    Refusal,
    Reservation,
    subject,
)
from services.auth.settings import AuthSettings
from shared.audit import audit

if TYPE_CHECKING:
    from services.auth.context import AuthContext

__all__ = ["Policies", "Style", "admit_request", "check_credentials"]

Style = Literal["api", "token"]
logger = logging.getLogger("ecloud.auth")
CredentialCheck = Callable[[], Awaitable[Principal | None]]


@dataclass(frozen=True, slots=True)
class Policies:
    requests: Policy
    address_failures: Policy
    failures: Policy
    account_failures: Policy

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Policies:
        return cls(
            requests=Policy("requests", settings.request_rate),
            address_failures=Policy("address-failures", settings.address_failure_rate),
            failures=Policy("failures", settings.failure_rate),
            account_failures=Policy("account-failures", settings.account_failure_rate),
        )

    def failure_budgets(self, client: str, account: str | None) -> list[Budget]:
        budgets = [Budget(self.address_failures, subject(client))]
        if account is not None:
            budgets += [
                Budget(self.failures, subject(account, client)),
                Budget(self.account_failures, subject(account)),
            ]
        return budgets


async def admit_request(
    ctx: AuthContext, endpoint: str, client: str, style: Style
) -> JSONResponse | None:
    """Count one login/token request of `client`; the 429 (or 503) to answer, or None."""
    try:
        refusal = await ctx.limits.hit(Budget(ctx.policies.requests, subject(client)))
    except RateLimitUnavailableError as exc:
        return _unavailable(ctx, style, "rate limits", exc)
    return None if refusal is None else _too_many(ctx, endpoint, client, refusal, style)


async def check_credentials(
    ctx: AuthContext,
    *,
    endpoint: str,
    client: str,
    account: str | None,
    style: Style,
    check: CredentialCheck,
) -> Principal | JSONResponse | None:
    """Run `check` inside the failure budgets.

    `account` is the username when the secret is a password, None for tokens
    (never counted per account). Returns the principal; None for wrong
    credentials (already counted and audited: answer 401); or the 429/503 to
    answer without having checked anything.
    """
    try:
        held = await ctx.limits.reserve(ctx.policies.failure_budgets(client, account))
    except RateLimitUnavailableError as exc:
        return _unavailable(ctx, style, "rate limits", exc)
    if isinstance(held, Refusal):
        return _too_many(ctx, endpoint, client, held, style)
    reservation: Reservation = held
    try:
        principal = await check()
    except Argon2BusyError as exc:
        await reservation.release()
        ctx.metrics.argon2_busy.inc(endpoint=endpoint)
        return _unavailable(ctx, style, "password checks", exc)
    except BaseException:
        await reservation.release()
        raise
    if principal is not None:
        await reservation.release()
        return principal
    ctx.metrics.auth_failures.inc(endpoint=endpoint)
    audit("auth_failed", endpoint=endpoint, account=(account or "")[:200], client=client)
    try:
        await reservation.failed()
    except RateLimitUnavailableError as exc:
        return _unavailable(ctx, style, "rate limits", exc)
    return None


def _too_many(
    ctx: AuthContext, endpoint: str, client: str, refusal: Refusal, style: Style
) -> JSONResponse:
    ctx.metrics.rate_limited.inc(limit=refusal.policy.name)
    audit("rate_limited", endpoint=endpoint, limit=refusal.policy.name, client=client)
    message = "too many requests; retry later"
    if style == "api":
        return api_error(429, "TOOMANYREQUESTS", message, refusal.headers())
    return token_error(429, "TOOMANYREQUESTS", message, "slow_down", refusal.headers())


def _unavailable(ctx: AuthContext, style: Style, what: str, exc: Exception) -> JSONResponse:
    message = f"too many {what} at once; retry later"
    if isinstance(exc, RateLimitUnavailableError):
        logger.warning("rate-limit storage unavailable: %s", exc)
        message = "the rate-limit storage is unavailable; retry later"
    headers = {"Retry-After": "1"}
    if style == "api":
        return api_error(503, "UNAVAILABLE", message, headers)
    return token_error(503, "UNAVAILABLE", message, "temporarily_unavailable", headers)
