"""Sliding-window rate limits per client address and per account.

Two limiters guard the login and token endpoints: one counts every request
(generous, stops floods), one counts failed authentications (strict, stops
password guessing). State is per process; behind several replicas each keeps
its own window, which bounds an attacker at replicas × limit.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from services.auth.settings import RateLimit

__all__ = ["Decision", "SlidingWindowLimiter"]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window: int

    def headers(self, policy: str) -> dict[str, str]:
        """IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers), plus Retry-After."""
        headers = {
            "RateLimit-Policy": f'"{policy}";q={self.limit};w={self.window}',
            "RateLimit": f'"{policy}";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class SlidingWindowLimiter:
    def __init__(self, rate: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._last_prune = clock()

    def _window(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.rate.window:
            events.popleft()
        return events

    def _decision(self, events: deque[float], now: float, allowed: bool) -> Decision:
        remaining = max(0, self.rate.limit - len(events))
        reset = events[0] + self.rate.window - now if events else 0.0
        return Decision(
            allowed, self.rate.limit, remaining, math.ceil(max(0.0, reset)), int(self.rate.window)
        )

    def peek(self, key: str) -> Decision:
        """Whether one more event would be allowed, without recording it."""
        now = self._clock()
        events = self._window(key, now)
        return self._decision(events, now, len(events) < self.rate.limit)

    def hit(self, key: str) -> Decision:
        """Record an event if allowed; refuse (and record nothing) when the window is full."""
        now = self._clock()
        self._prune(now)
        events = self._window(key, now)
        if len(events) >= self.rate.limit:
            return self._decision(events, now, False)
        events.append(now)
        return self._decision(events, now, True)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def _prune(self, now: float) -> None:
        if now - self._last_prune < self.rate.window:
            return
        self._last_prune = now
        for key in [
            k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.rate.window
        ]:
            del self._events[key]
