"""One way to open a metadata database and apply versioned migrations.

Both services keep their metadata in SQL through ``databases``: SQLite
(aiosqlite, WAL) by default, PostgreSQL (asyncpg) when several replicas run.
Migrations are plain SQL per version, recorded in ``schema_migrations`` and
applied under a lock so that replicas starting together apply each one once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from databases import Database
from databases.core import Connection

__all__ = ["MetadataDB", "Migration", "sqlite_url"]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version. `sql` holds statements separated by ``;`` lines.

    `postgres_sql`, when set, replaces `sql` on PostgreSQL.
    """

    version: int
    name: str
    sql: str
    postgres_sql: str | None = None

    def statements(self, dialect: str) -> list[str]:
        text = self.postgres_sql if dialect == "postgresql" and self.postgres_sql else self.sql
        return [s.strip() for s in text.split(";") if s.strip()]


class MetadataDB:
    """A connected `databases.Database` plus the dialect-aware helpers we need."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "postgresql" if url.startswith(("postgres", "postgresql")) else "sqlite"
        if self.dialect == "sqlite":
            path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # timeout is sqlite3's busy timeout: writers wait for each other.
            self.database = Database(url, timeout=30)
        else:
            self.database = Database(url, min_size=1, max_size=20)

    async def connect(self) -> None:
        await self.database.connect()
        if self.dialect == "sqlite":
            # WAL is a property of the file: set once, kept across connections.
            await self.database.execute("PRAGMA journal_mode=WAL")

    async def disconnect(self) -> None:
        await self.database.disconnect()

    async def ping(self) -> bool:
        try:
            return bool(await self.database.fetch_val("SELECT 1") == 1)
        except Exception:
            return False

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A write transaction that takes the write lock up front.

        SQLite's deferred ``BEGIN`` fails with SQLITE_BUSY when a reader later
        tries to write after another writer committed; ``BEGIN IMMEDIATE``
        waits for the lock instead (bounded by the busy timeout).
        """
        async with self.database.connection() as conn:
            if self.dialect == "postgresql":
                async with conn.transaction():
                    yield conn
                return
            # Foreign keys (and their ON DELETE CASCADE) are per connection in
            # SQLite and can only be switched on outside a transaction.
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def advisory_lock_key(self, name: str) -> int:
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)

    async def migrate(self, migrations: Sequence[Migration], lock_name: str) -> list[int]:
        """Apply the pending migrations in version order; return the versions applied."""
        versions = [m.version for m in migrations]
        if versions != sorted(set(versions)):
            raise ValueError("migration versions must be unique and ascending")
        await self.database.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        applied: list[int] = []
        key = await self.advisory_lock_key(lock_name)
        async with self.write() as conn:
            if self.dialect == "postgresql":
                await conn.execute("SELECT pg_advisory_xact_lock(:k)", {"k": key})
            rows = await conn.fetch_all("SELECT version FROM schema_migrations")
            done = {int(r["version"]) for r in rows}
            for migration in migrations:
                if migration.version in done:
                    continue
                for statement in migration.statements(self.dialect):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)",
                    {"v": migration.version, "n": migration.name, "t": time.time()},
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        value = await self.database.fetch_val("SELECT MAX(version) FROM schema_migrations")
        return int(value or 0)


async def migrate_database(url: str, migrations: Sequence[Migration], lock_name: str) -> list[int]:
    """Connect, apply pending migrations, disconnect: the ``migrate`` commands' whole job."""
    db = MetadataDB(url)
    await db.connect()
    try:
        return await db.migrate(migrations, lock_name)
    finally:
        await db.disconnect()
