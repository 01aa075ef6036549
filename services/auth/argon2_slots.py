"""A bounded number of Argon2 computations at once, so memory stays bounded.

Each Argon2id check or hash takes its full memory cost (64 MiB by default)
while it runs in a worker thread. Without a bound, the thread pool (40
threads) lets 40 parallel logins take 2.5 GiB. `Argon2Slots` admits at most
`max_concurrent` at once (``ECLOUD_ARGON2_MAX_CONCURRENT``, by default what
fits in a memory budget) and lets a few more wait briefly; beyond that, or
after the wait, the caller gets `Argon2BusyError` and answers 503 with
``Retry-After``. Nothing queues without bound.

The bound is per process on purpose: it protects this process's memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["Argon2BusyError", "Argon2Slots"]

T = TypeVar("T")


class Argon2BusyError(RuntimeError):
    """Every slot is taken and the short waiting line is full (or the wait ran out)."""


class Argon2Slots:
    def __init__(
        self, max_concurrent: int, *, max_waiting: int | None = None, wait_seconds: float = 5.0
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_waiting = 2 * max_concurrent if max_waiting is None else max_waiting
        self.wait_seconds = wait_seconds
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._waiting = 0

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker thread once a slot is free."""
        if self._semaphore.locked():
            if self._waiting >= self.max_waiting:
                raise Argon2BusyError("too many password checks at once")
            self._waiting += 1
            try:
                await asyncio.wait_for(self._semaphore.acquire(), self.wait_seconds)
            except TimeoutError as exc:
                raise Argon2BusyError("too many password checks at once") from exc
            finally:
                self._waiting -= 1
        else:
            await self._semaphore.acquire()
        try:
            # Not abandoned on cancellation: the slot is held until the thread ends.
            return await run_in_threadpool(fn, *args)
        finally:
            self._semaphore.release()
