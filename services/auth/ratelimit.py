"""Rate limits of the login and token endpoints, in storage all replicas share.

Built on the `limits` library's moving windows, kept in the storage named by
``ECLOUD_RATE_LIMIT_STORAGE``: ``memory://`` (one process) or Redis (every
replica and worker counts in the same windows, so N replicas do not mean N
times the limit).

Two kinds of budget:

- requests: every login and token request per client address (floods);
- failures: wrong credentials (guessing), per budget key, e.g. per
  (account, address), per account, per address (`guard` picks the keys).

A failure budget must hold whatever the concurrency: checking the count first
and recording a failure only after the (slow) password check lets a burst of
parallel guesses all through. So an attempt *reserves* its place before the
check: it increments an in-flight counter of each key and is admitted only if
recorded failures + attempts in flight stay within the limit. A failed attempt
then records its failure, and only after that leaves the in-flight count; a
successful one just leaves. The in-flight count is read before the failures,
so an attempt that ends in between is counted at least once: at most `limit`
wrong credentials are ever checked per key and window.

In-flight counters live in time buckets (`INFLIGHT_BUCKET` seconds) that
expire on their own, so a crashed process cannot hold places forever; an
attempt is counted in the bucket it started in and the one before, which
covers it as long as a check takes less than a bucket (it takes well under a
second, and Argon2 checks are never queued for long: `argon2_slots`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from services.auth.settings import RateLimit

__all__ = [
    "INFLIGHT_BUCKET",
    "Budget",
    "Policy",
    "RateLimitUnavailableError",
    "RateLimits",
    "Refusal",
    "Reservation",
]

INFLIGHT_BUCKET = 60


class RateLimitUnavailableError(RuntimeError):
    """The rate-limit storage (Redis) cannot be reached: refuse rather than not count."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A named limit, e.g. ``failures`` = 10 per 300 s; `name` appears in the headers."""

    name: str
    rate: RateLimit


@dataclass(frozen=True, slots=True)
class Budget:
    """One policy applied to one subject (an address, an account, or both)."""

    policy: Policy
    subject: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused by `policy`; `reset_seconds` until a place frees up."""

    policy: Policy
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers), plus Retry-After."""
        name, rate = self.policy.name, self.policy.rate
        reset = max(1, self.reset_seconds)
        return {
            "RateLimit-Policy": f'"{name}";q={rate.limit};w={rate.window}',
            "RateLimit": f'"{name}";r=0;t={reset}',
            "Retry-After": str(reset),
        }


@dataclass(slots=True)
class Reservation:
    """Places held by one credential check; end it with `failed()` or `release()`."""

    limits: RateLimits
    budgets: Sequence[Budget]
    inflight_keys: list[str]
    ended: bool = field(default=False)

    async def failed(self) -> None:
        """Record a failure on every budget, then give the places back."""
        if self.ended:
            return
        try:
            for budget in self.budgets:
                await self.limits.window.hit(self.limits.item(budget.policy), budget.subject)
        except StorageError as exc:
            raise RateLimitUnavailableError(str(exc)) from exc
        finally:
            await self.release()

    async def release(self) -> None:
        """Give the places back without recording anything (a success, or no check run)."""
        if self.ended:
            return
        self.ended = True
        for key in self.inflight_keys:
            try:
                await self.limits.storage.incr(key, 3 * INFLIGHT_BUCKET, -1)
            except StorageError:
                pass  # the bucket expires on its own


def subject(*parts: str) -> str:
    """A storage-safe identifier for an address and/or account (never the raw name)."""
    joined = "\x1f".join(p.lower() for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RateLimits:
    def __init__(self, storage_url: str, prefix: str) -> None:
        options: dict[str, float | str | bool] = {"wrap_exceptions": True}
        if storage_url.startswith(("redis", "rediss")):
            options.update(implementation="redispy", socket_timeout=2.0, socket_connect_timeout=2.0)
        self.storage = cast(Storage, storage_from_string("async+" + storage_url, **options))
        if not isinstance(self.storage, MovingWindowSupport):
            raise ValueError(f"{storage_url} does not support moving windows")
        self.window = MovingWindowRateLimiter(self.storage)
        self.prefix = prefix
        self._items: dict[Policy, RateLimitItem] = {}

    def item(self, policy: Policy) -> RateLimitItem:
        item = self._items.get(policy)
        if item is None:
            item = RateLimitItemPerSecond(
                policy.rate.limit, policy.rate.window, namespace=f"{self.prefix}/{policy.name}"
            )
            self._items[policy] = item
        return item

    async def ping(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:
            return False

    async def hit(self, budget: Budget) -> Refusal | None:
        """Count one event (a request); a `Refusal` when the window is full."""
        item = self.item(budget.policy)
        try:
            if await self.window.hit(item, budget.subject):
                return None
            return await self._refusal(budget)
        except StorageError as exc:
            raise RateLimitUnavailableError(str(exc)) from exc

    async def reserve(self, budgets: Sequence[Budget]) -> Reservation | Refusal:
        """Hold a place in every failure budget before a credential check (see the module)."""
        bucket = int(time.time() // INFLIGHT_BUCKET)
        reservation = Reservation(self, budgets, [])
        try:
            for budget in budgets:
                key = self._inflight_key(budget, bucket)
                await self.storage.incr(key, 3 * INFLIGHT_BUCKET, 1)
                reservation.inflight_keys.append(key)
            for budget in budgets:
                in_flight = 0
                for b in (bucket - 1, bucket):
                    in_flight += max(0, await self.storage.get(self._inflight_key(budget, b)))
                stats = await self.window.get_window_stats(self.item(budget.policy), budget.subject)
                failures = budget.policy.rate.limit - stats.remaining
                if failures + in_flight > budget.policy.rate.limit:
                    await reservation.release()
                    # Full of attempts still running: a place frees up within a second.
                    full = failures >= budget.policy.rate.limit
                    return Refusal(budget.policy, _seconds_until(stats.reset_time) if full else 1)
        except StorageError as exc:
            await reservation.release()
            raise RateLimitUnavailableError(str(exc)) from exc
        return reservation

    def _inflight_key(self, budget: Budget, bucket: int) -> str:
        return f"{self.prefix}/inflight/{budget.policy.name}/{budget.subject}/{bucket}"

    async def _refusal(self, budget: Budget) -> Refusal:
        stats = await self.window.get_window_stats(self.item(budget.policy), budget.subject)
        return Refusal(budget.policy, _seconds_until(stats.reset_time))


def _seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))
