"""Named exclusive locks that hold across worker processes and replicas.

``await locks.hold(name, wait)`` gives exclusive ownership of `name` to one
holder at a time among every process that uses the same database, or raises
`LockBusy` after waiting up to `wait` seconds. The registry holds one per
upload while a request writes to it (``storage.uploads``), so two requests
never write the same upload's bytes at once, whichever process serves them,
and the garbage collector skips an upload someone is writing.

How, per database:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) taken
  on one connection per process kept for that purpose (advisory locks of one
  session are re-entrant, so the process also keeps the set of names it holds
  and never grants one twice). A process that dies closes its connection and
  the server drops its locks at once. If the lock connection itself breaks
  (a restarted server) its locks are gone: `Held.check()` then raises
  `LockLost`, which holders call before each step that must stay exclusive.
- SQLite (one host by nature): a POSIX byte-range lock (``fcntl.lockf``),
  one byte per name at an offset hashed from it, in a file beside the
  database (``<database>-locks``): the same kind of lock SQLite itself takes
  on its files. The kernel releases it when the process dies, and it never
  blocks a database writer. Record locks belong to the process, hence the
  same in-process set of held names; the file is opened once and never
  closed while locks may be held (closing any descriptor of a file drops the
  process's locks on it).
- ``:memory:`` SQLite: one process only, so the in-process set alone.

Waiting is polling with a short pause: holds are rare to contend (a client
sending two writes to one upload at once), so nothing queues for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Held", "LockBusy", "LockLost", "Locks", "lock_key"]

_POLL_SECONDS = 0.05


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock named `name` (also a PostgreSQL advisory key)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LockBusy(Exception):
    """Someone else holds the lock."""


class LockLost(Exception):
    """The lock was lost while held (its database connection broke)."""


@dataclass(slots=True)
class Held:
    """A lock being held; `check` fails once the lock can no longer be trusted."""

    name: str
    generation: int
    locks: Locks

    def check(self) -> None:
        if self.locks.generation != self.generation:
            raise LockLost(f"the lock {self.name!r} was lost; its database connection broke")


class Locks:
    """The named locks of one database (see the module doc)."""

    def __init__(self, engine: AsyncEngine, dialect: str, sqlite_path: str | None) -> None:
        self._engine = engine
        self._dialect = dialect
        self._lock_file = (
            Path(sqlite_path + "-locks")
            if dialect == "sqlite" and sqlite_path not in (None, "", ":memory:")
            else None
        )
        self._held: set[str] = set()
        self._fd: int | None = None
        self._conn: AsyncConnection | None = None
        self._conn_guard = asyncio.Lock()
        # Moves when the PostgreSQL lock connection is replaced: every lock
        # taken on the old one is lost.
        self.generation = 0

    @contextlib.asynccontextmanager
    async def hold(self, name: str, wait: float = 0.0) -> AsyncIterator[Held]:
        """Hold `name` for the block; `LockBusy` when not free within `wait` seconds."""
        deadline = time.monotonic() + wait
        while not await self._try(name):
            if time.monotonic() >= deadline:
                raise LockBusy(f"{name!r} is held by another request")
            await asyncio.sleep(_POLL_SECONDS)
        held = Held(name, self.generation, self)
        try:
            yield held
        finally:
            await self._release(name, held.generation)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        if self._fd is not None and not self._held:
            os.close(self._fd)
            self._fd = None

    # -- one lock -----------------------------------------------------------------

    async def _try(self, name: str) -> bool:
        if name in self._held:
            return False
        self._held.add(name)  # claimed in-process before any await
        try:
            if self._dialect == "postgresql":
                taken = await self._pg("SELECT pg_try_advisory_lock(:k)", lock_key(name))
            elif self._lock_file is not None:
                taken = self._file_lock(name, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                taken = True
        except BaseException:
            self._held.discard(name)
            raise
        if not taken:
            self._held.discard(name)
        return bool(taken)

    async def _release(self, name: str, generation: int) -> None:
        try:
            if self._dialect == "postgresql":
                if generation == self.generation:
                    with contextlib.suppress(Exception):
                        await self._pg("SELECT pg_advisory_unlock(:k)", lock_key(name))
            elif self._lock_file is not None:
                self._file_lock(name, fcntl.LOCK_UN)
        finally:
            self._held.discard(name)

    def _file_lock(self, name: str, operation: int) -> bool:
        if self._fd is None:
            assert self._lock_file is not None
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        # One byte per name, anywhere in a 2**62 range: distinct names
        # collide with negligible probability; the file stays empty.
        offset = lock_key(name) & (2**62 - 1)
        try:
            fcntl.lockf(self._fd, operation, 1, offset)
        except (BlockingIOError, PermissionError):
            return False
        return True

    async def _pg(self, sql: str, key: int) -> Any:
        async with self._conn_guard:
            for attempt in (1, 2):
                if self._conn is None:
                    conn = await self._engine.connect()
                    self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                try:
                    result = await self._conn.execute(text(sql), {"k": key})
                    return result.scalar()
                except Exception:
                    # A broken lock connection loses every lock it held; the
                    # first failure is retried once on a fresh connection
                    # (a restarted server).
                    broken, self._conn = self._conn, None
                    self.generation += 1
                    with contextlib.suppress(Exception):
                        await broken.invalidate()
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")
