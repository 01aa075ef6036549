"""One way to open a metadata database, run SQL on it and apply versioned migrations.

Both services keep their metadata in SQL through SQLAlchemy's asyncio Core
(no ORM): SQLite through aiosqlite by default, PostgreSQL through asyncpg
when several replicas run. Connections are pooled and stay open; no
connection or thread is made per query.

Three ways to run SQL, all taking a SQL string with ``:name`` bound
parameters (a list or tuple value becomes an expanding ``IN :name`` list)
or a Core statement, plus a dict of values, and giving rows that support
``row["column"]``:

- ``db.fetch_one/fetch_all/fetch_val/execute``: one statement on its own
  (autocommit: SQLite's implicit transaction around one statement, an
  autocommit asyncpg connection), the cheapest path.
- ``async with db.write() as conn``: a write transaction. On SQLite it is
  ``BEGIN IMMEDIATE``: the single write lock is taken up front, so two
  writers wait for each other (bounded by the busy timeout) instead of
  failing with SQLITE_BUSY when a deferred reader upgrades. On PostgreSQL a
  READ COMMITTED transaction; row locks are asked for where needed.
- ``async with db.read() as conn``: several reads from one snapshot (a
  deferred ``BEGIN`` on SQLite; REPEATABLE READ, read only on PostgreSQL).

Inside ``write()`` or ``read()``, the db's own query methods called from the
same task run on that transaction's connection, so code that passes `db`
down never waits on a second connection for a lock its own transaction holds.

SQLite specifics, set once per pooled connection (pool ``connect`` event):
WAL (readers never wait for the writer), ``foreign_keys=ON``, a busy
timeout, and ``synchronous=FULL``. The driver's own transaction handling is
switched off (``isolation_level = None``) and ours emits the ``BEGIN``
(SQLAlchemy's documented recipe for SQLite transactions).

On SQLite, a statement run on its own that only reads (``fetch_one``,
``fetch_all``, ``fetch_val`` outside any transaction) runs inline on the
calling thread, on a per-thread ``sqlite3`` connection of a synchronous
engine: an indexed point read takes microseconds, while a hop to an
aiosqlite thread and back costs several context switches per statement
(checkout, execute, fetch, reset), most of a manifest GET's time. In WAL
mode a reader never waits for the writer; should it ever meet a lock
(recovery of a crashed writer's WAL), it gives up after `_INLINE_BUSY_MS`
and the statement goes through the pool, which waits as long as writers do.
``read()`` snapshots always use the pool.

On SQLite a process's write transactions (``write()``, and ``execute`` on
its own) take turns on one asyncio lock before ``BEGIN IMMEDIATE``, so they
never retry in SQLite's busy handler against each other. A ``write()`` then
runs inline on a synchronous connection of this thread when the write lock
is free at once (busy timeout 0); when another process holds it, the
transaction goes to the pool, which waits for it (the busy timeout) off the
event loop. Inline or pooled, a transaction sees the same SQL and the same
pragmas (``synchronous=FULL``: a commit is on disk before it returns).

Migrations are plain SQL per version, recorded in ``schema_migrations`` and
applied under a lock (SQLite's write lock, a PostgreSQL advisory lock) so
replicas and worker processes starting together apply each one once.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, RowMapping, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import (
    AsyncAdaptedQueuePool,
    ConnectionPoolEntry,
    SingletonThreadPool,
    StaticPool,
)
from sqlalchemy.sql import ColumnElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import BigInteger, Double, LargeBinary, String, TypeEngine

from shared.locks import Locks, lock_key
from shared.private_files import FOLDER_MODE, tighten

__all__ = [
    "DBConnection",
    "MetadataDB",
    "Migration",
    "Query",
    "Row",
    "bytewise",
    "lock_key",
    "migrate_database",
    "sqlite_url",
]

Row = RowMapping
Query = str | Executable

# sqlite3's busy timeout: a writer waits this long for another's lock.
_BUSY_TIMEOUT_MS = 30_000
# An inline reader waits at most this long for a lock before handing the
# statement to the pool (it blocks its event loop while it waits).
_INLINE_BUSY_MS = 20
# Each pooled SQLite connection is one aiosqlite thread; SQLite has one
# writer at a time anyway, so a few connections serve many readers.
_SQLITE_POOL = {"pool_size": 5, "max_overflow": 10}
# asyncpg connections per process (several processes share the server's
# max_connections, 100 by default).
_POSTGRES_POOL = {"pool_size": 10, "max_overflow": 10}
# Execution option naming the BEGIN our SQLite hook emits; absent: none
# (one statement in SQLite's own implicit transaction).
_BEGIN = "ecloud_sqlite_begin"


class _RawRow(dict[str, Any]):
    """A row of the raw inline path: ``row["column"]`` like a `RowMapping`."""

    __slots__ = ()


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
        text_ = self.postgres_sql if dialect == "postgresql" and self.postgres_sql else self.sql
        return [s.strip() for s in text_.split(";") if s.strip()]


# -- Core helpers ---------------------------------------------------------------


class bytewise(ColumnElement[str]):
    """`column` compared bytewise: ``COLLATE "C"`` on PostgreSQL; SQLite's default
    BINARY collation already is, and it has no collation named "C"."""

    inherit_cache = True
    type = String()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column


@compiles(bytewise)
def _bytewise_default(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(bytewise, "postgresql")
def _bytewise_postgresql(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.column, **kw)} COLLATE "C"'


# The SQL type of an expanding list's items, from the first one (an empty
# list still needs one: PostgreSQL compares its empty set with the column).
_ITEM_TYPES: dict[type, TypeEngine[Any]] = {
    str: String(),
    int: BigInteger(),
    float: Double(),
    bytes: LargeBinary(),
}


@functools.lru_cache(maxsize=1024)
def _text(sql: str, expanding: tuple[tuple[str, type], ...]) -> Executable:
    """`sql` as a text clause (parsed once per distinct string), with the list
    values among its parameters bound as expanding ``IN`` lists."""
    clause = text(sql)
    used = [
        bindparam(name, expanding=True, type_=_ITEM_TYPES.get(kind, String()))
        for name, kind in expanding
        if re.search(rf"(?<![:\w]):{name}(?!\w)", sql)
    ]
    return clause.bindparams(*used) if used else clause


def _statement(query: Query, values: Mapping[str, Any] | None) -> Executable:
    if not isinstance(query, str):
        return query
    lists = ((k, v) for k, v in (values or {}).items() if isinstance(v, list | tuple))
    return _text(query, tuple(sorted((k, type(v[0]) if v else str) for k, v in lists)))


# -- connections ------------------------------------------------------------------


class DBConnection:
    """One pooled connection, usually inside a transaction of ``MetadataDB.write()``."""

    __slots__ = ("conn", "dialect")

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    async def execute(self, query: Query, values: Mapping[str, Any] | None = None) -> int:
        """Run one statement; the number of rows it changed (when the driver says)."""
        result = await self.conn.execute(_statement(query, values), dict(values or {}))
        return int(result.rowcount)

    async def execute_many(self, query: Query, values: Sequence[Mapping[str, Any]]) -> None:
        if values:
            await self.conn.execute(_statement(query, values[0]), [dict(v) for v in values])

    async def fetch_one(self, query: Query, values: Mapping[str, Any] | None = None) -> Row | None:
        result = await self.conn.execute(_statement(query, values), dict(values or {}))
        return result.mappings().first()

    async def fetch_all(self, query: Query, values: Mapping[str, Any] | None = None) -> list[Row]:
        result = await self.conn.execute(_statement(query, values), dict(values or {}))
        return list(result.mappings().all())

    async def fetch_val(
        self, query: Query, values: Mapping[str, Any] | None = None, column: int = 0
    ) -> Any:
        result = await self.conn.execute(_statement(query, values), dict(values or {}))
        row = result.first()
        return None if row is None else row[column]

    async def exec_driver(self, sql: str) -> None:
        """Raw driver SQL (not parsed for bound parameters): migrations."""
        await self.conn.exec_driver_sql(sql)

    def savepoint(self) -> AbstractAsyncContextManager[Any]:
        return self.conn.begin_nested()

    async def advisory_lock(self, name: str) -> None:
        """Hold the lock `name` until this transaction ends (inside ``write()``).

        PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to
        do, ``BEGIN IMMEDIATE`` already holds the database's one write lock.
        """
        if self.dialect == "postgresql":
            await self.execute("SELECT pg_advisory_xact_lock(:k)", {"k": lock_key(name)})


class InlineDBConnection(DBConnection):
    """A SQLite write transaction run inline on the event loop's thread (see
    ``MetadataDB.write``): the same methods over a synchronous connection."""

    __slots__ = ("sync",)

    def __init__(self, conn: Connection, dialect: str) -> None:
        # No asynchronous connection: every method below uses `sync`.
        super().__init__(cast(AsyncConnection, None), dialect)
        self.sync = conn

    async def execute(self, query: Query, values: Mapping[str, Any] | None = None) -> int:
        result = self.sync.execute(_statement(query, values), dict(values or {}))
        return int(result.rowcount)

    async def execute_many(self, query: Query, values: Sequence[Mapping[str, Any]]) -> None:
        if values:
            self.sync.execute(_statement(query, values[0]), [dict(v) for v in values])

    async def fetch_one(self, query: Query, values: Mapping[str, Any] | None = None) -> Row | None:
        result = self.sync.execute(_statement(query, values), dict(values or {}))
        row: Row | None = result.mappings().first()
        return row

    async def fetch_all(self, query: Query, values: Mapping[str, Any] | None = None) -> list[Row]:
        result = self.sync.execute(_statement(query, values), dict(values or {}))
        return list(result.mappings().all())

    async def fetch_val(
        self, query: Query, values: Mapping[str, Any] | None = None, column: int = 0
    ) -> Any:
        result = self.sync.execute(_statement(query, values), dict(values or {}))
        row = result.first()
        return None if row is None else row[column]

    async def exec_driver(self, sql: str) -> None:
        self.sync.exec_driver_sql(sql)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[Any]:
        with self.sync.begin_nested() as nested:
            yield nested


def _engine_url(url: str) -> tuple[URL, str]:
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite"), "sqlite"
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg"), "postgresql"
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def _sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Take over transaction control from the driver: it would otherwise
    # emit a deferred BEGIN of its own before DML and none before SELECT.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL syncs only at checkpoints, so a commit already
        # acknowledged to a client could vanish on power loss; FULL syncs
        # the WAL at every commit. A registry acknowledges pushes: keep them.
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _sqlite_inline_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Autocommit (each SELECT its own read transaction, ended as soon as its
    # rows are fetched) and read-only: this connection never writes.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={_INLINE_BUSY_MS}")
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def _sqlite_inline_writer_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    _sqlite_connect(dbapi_connection, record)
    # BEGIN IMMEDIATE either gets the write lock at once or the transaction
    # goes to the pool, which waits for it off the event loop.
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN)
    if mode is not None:
        conn.exec_driver_sql(f"BEGIN {mode}")


class MetadataDB:
    """A pooled SQLAlchemy async engine plus the transaction shapes we use."""

    def __init__(self, url: str) -> None:
        self.url = url
        engine_url, self.dialect = _engine_url(url)
        self._tasks: dict[asyncio.Task[Any], DBConnection] = {}
        self._turn: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        path = engine_url.database or ""
        if self.dialect == "sqlite":
            memory = path in ("", ":memory:")
            if not memory:
                # The database and its -wal/-shm files: 0600 (`shared.private_files`).
                Path(path).parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
                tighten(Path(path), Path(path + "-wal"), Path(path + "-shm"))
            self.engine: AsyncEngine = create_async_engine(
                engine_url,
                poolclass=StaticPool if memory else AsyncAdaptedQueuePool,
                **({} if memory else _SQLITE_POOL),
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
            self._single = self.engine
            self._inline: Engine | None = None
            self._inline_writer: Engine | None = None
            self._path = path
            # Per thread: the loop's thread, and in tests any other that runs one.
            self._raw = threading.local()
            self._raw_all: list[sqlite3.Connection] = []
            if not memory:
                self._inline = create_engine(
                    engine_url.set(drivername="sqlite+pysqlite"),
                    poolclass=SingletonThreadPool,
                    pool_size=8,
                    connect_args={"check_same_thread": False},
                )
                event.listen(self._inline, "connect", _sqlite_inline_connect)
                self._inline_writer = create_engine(
                    engine_url.set(drivername="sqlite+pysqlite"),
                    poolclass=SingletonThreadPool,
                    pool_size=8,
                    connect_args={"check_same_thread": False},
                    execution_options={_BEGIN: "IMMEDIATE"},
                )
                event.listen(self._inline_writer, "connect", _sqlite_inline_writer_connect)
                event.listen(self._inline_writer, "begin", _sqlite_begin)
            self._writer = self.engine.execution_options(**{_BEGIN: "IMMEDIATE"})
            self._reader = self.engine.execution_options(**{_BEGIN: "DEFERRED"})
        else:
            self._inline = None
            self._inline_writer = None
            self.engine = create_async_engine(
                engine_url,
                # A restarted server leaves dead connections in the pool:
                # each checkout checks its connection first and replaces it.
                pool_pre_ping=True,
                **_POSTGRES_POOL,
            )
            self._single = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            self._writer = self.engine
            self._reader = self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        # Named locks across processes and replicas (see shared.locks).
        self.locks = Locks(self.engine, self.dialect, path if self.dialect == "sqlite" else None)

    @property
    def database(self) -> MetadataDB:
        """The db itself: code written for the ``databases`` era called ``db.database``."""
        return self

    async def connect(self) -> None:
        """Open the first pooled connection: fails now when the database is unreachable."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def disconnect(self) -> None:
        await self.locks.close()
        if self._inline_writer is not None:
            self._inline_writer.dispose()
        if self._inline is not None:
            self._inline.dispose()
            for conn in self._raw_all:
                conn.close()
            self._raw_all.clear()
            self._raw = threading.local()
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            return bool(await self.fetch_val("SELECT 1") == 1)
        except Exception:
            return False

    # -- transactions ---------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self, engine: AsyncEngine) -> AsyncIterator[DBConnection]:
        task = asyncio.current_task()
        outer = self._tasks.get(task) if task is not None else None
        if outer is not None:
            # Nested in this task's transaction: a savepoint on its connection.
            async with outer.savepoint():
                yield outer
            return
        async with self._writer_turn(engine):
            inline = self._begin_inline() if engine is self._writer else None
            if inline is not None:
                sync, transaction = inline
                wrapped: DBConnection = InlineDBConnection(sync, self.dialect)
                if task is not None:
                    self._tasks[task] = wrapped
                try:
                    yield wrapped
                except BaseException:
                    transaction.rollback()
                    raise
                else:
                    transaction.commit()
                finally:
                    if task is not None:
                        self._tasks.pop(task, None)
                    sync.close()
                return
            async with engine.connect() as conn, conn.begin():
                wrapped = DBConnection(conn, self.dialect)
                if task is not None:
                    self._tasks[task] = wrapped
                try:
                    yield wrapped
                finally:
                    if task is not None:
                        self._tasks.pop(task, None)

    def _begin_inline(self) -> tuple[Connection, Any] | None:
        """A SQLite write transaction on this thread's synchronous connection when
        the write lock is free now; None when another process holds it."""
        if self._inline_writer is None:
            return None
        conn = self._inline_writer.connect()
        try:
            return conn, conn.begin()
        except OperationalError as exc:
            conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            raise

    @asynccontextmanager
    async def _writer_turn(self, engine: AsyncEngine | None) -> AsyncIterator[None]:
        """On SQLite, this process's writers take turns here before ``BEGIN IMMEDIATE``.

        SQLite has one writer at a time; writers of one process that met its
        lock would each retry in SQLite's busy handler, sleeping 1, 2, 5, 10,
        ... 100 ms between tries, long after the lock was free. Queued here they
        start the moment the previous one commits; only writers of other
        processes still meet the busy handler. Bounded like the busy timeout.
        """
        if self.dialect != "sqlite" or (engine is not None and engine is not self._writer):
            yield
            return
        loop = asyncio.get_running_loop()
        if self._turn is None or self._turn[0] is not loop:
            self._turn = (loop, asyncio.Lock())
        lock = self._turn[1]
        async with asyncio.timeout(_BUSY_TIMEOUT_MS / 1000):
            await lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def write(self) -> AbstractAsyncContextManager[DBConnection]:
        """``async with db.write() as conn``: a write transaction (see the module doc)."""
        return self._transaction(self._writer)

    def read(self) -> AbstractAsyncContextManager[DBConnection]:
        """``async with db.read() as conn``: consistent reads from one snapshot."""
        return self._transaction(self._reader)

    # -- one statement ----------------------------------------------------------

    def _current(self) -> DBConnection | None:
        if not self._tasks:
            return None
        task = asyncio.current_task()
        return None if task is None else self._tasks.get(task)

    async def execute(self, query: Query, values: Mapping[str, Any] | None = None) -> int:
        if (current := self._current()) is not None:
            return await current.execute(query, values)
        async with self._writer_turn(None), self._single.connect() as conn:
            count = await DBConnection(conn, self.dialect).execute(query, values)
            await conn.commit()
            return count

    async def execute_many(self, query: Query, values: Sequence[Mapping[str, Any]]) -> None:
        if (current := self._current()) is not None:
            await current.execute_many(query, values)
            return
        # Several statements: one transaction, all or nothing.
        async with self.write() as conn:
            await conn.execute_many(query, values)

    def _read_inline(self, query: Query, values: Mapping[str, Any] | None) -> list[Row] | None:
        """The rows of one read statement run inline (SQLite), or None when it met a
        lock and must go through the pool (see the module doc).

        SQL text without list values goes straight to the thread's ``sqlite3``
        connection (it takes ``:name`` parameters itself; text clauses have no
        result types to apply); anything else through the synchronous engine.
        """
        assert self._inline is not None
        try:
            if isinstance(query, str) and not any(
                isinstance(v, list | tuple) for v in (values or {}).values()
            ):
                return self._read_raw(query, values)
            with self._inline.connect() as conn:
                result = conn.execute(_statement(query, values), dict(values or {}))
                return list(result.mappings().all())
        except (OperationalError, sqlite3.OperationalError) as exc:
            if any(word in str(exc) for word in ("locked", "busy", "readonly")):
                return None
            raise

    def _read_raw(self, sql: str, values: Mapping[str, Any] | None) -> list[Row]:
        conn: sqlite3.Connection | None = getattr(self._raw, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={_INLINE_BUSY_MS}")
            conn.execute("PRAGMA query_only=ON")
            self._raw.conn = conn
            self._raw_all.append(conn)
        cursor = conn.execute(sql, values or {})
        try:
            names = [d[0] for d in cursor.description or ()]
            rows: list[Any] = [_RawRow(zip(names, row, strict=True)) for row in cursor.fetchall()]
            return rows
        finally:
            cursor.close()

    async def fetch_one(self, query: Query, values: Mapping[str, Any] | None = None) -> Row | None:
        if (current := self._current()) is not None:
            return await current.fetch_one(query, values)
        if self._inline is not None and (rows := self._read_inline(query, values)) is not None:
            return rows[0] if rows else None
        async with self._single.connect() as conn:
            return await DBConnection(conn, self.dialect).fetch_one(query, values)

    async def fetch_all(self, query: Query, values: Mapping[str, Any] | None = None) -> list[Row]:
        if (current := self._current()) is not None:
            return await current.fetch_all(query, values)
        if self._inline is not None and (rows := self._read_inline(query, values)) is not None:
            return rows
        async with self._single.connect() as conn:
            return await DBConnection(conn, self.dialect).fetch_all(query, values)

    async def fetch_val(
        self, query: Query, values: Mapping[str, Any] | None = None, column: int = 0
    ) -> Any:
        if (current := self._current()) is not None:
            return await current.fetch_val(query, values, column)
        if self._inline is not None and (rows := self._read_inline(query, values)) is not None:
            return None if not rows else list(rows[0].values())[column]
        async with self._single.connect() as conn:
            return await DBConnection(conn, self.dialect).fetch_val(query, values, column)

    # -- migrations -------------------------------------------------------------

    async def advisory_lock_key(self, name: str) -> int:
        return lock_key(name)

    async def migrate(self, migrations: Sequence[Migration], lock_name: str) -> list[int]:
        """Apply the pending migrations in version order; return the versions applied."""
        versions = [m.version for m in migrations]
        if versions != sorted(set(versions)):
            raise ValueError("migration versions must be unique and ascending")
        applied: list[int] = []
        async with self.write() as conn:
            # Under the lock: replicas racing on CREATE TABLE IF NOT EXISTS
            # can otherwise both try to create it on PostgreSQL.
            await conn.advisory_lock(lock_name)
            await conn.exec_driver(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            rows = await conn.fetch_all("SELECT version FROM schema_migrations")
            done = {int(r["version"]) for r in rows}
            for migration in migrations:
                if migration.version in done:
                    continue
                for statement in migration.statements(self.dialect):
                    # Raw driver SQL: migration text is not parsed for binds.
                    await conn.exec_driver(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)",
                    {"v": migration.version, "n": migration.name, "t": time.time()},
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        value = await self.fetch_val("SELECT MAX(version) FROM schema_migrations")
        return int(value or 0)


async def migrate_database(url: str, migrations: Sequence[Migration], lock_name: str) -> list[int]:
    """Connect, apply pending migrations, disconnect: the ``migrate`` commands' whole job."""
    db = MetadataDB(url)
    await db.connect()
    try:
        return await db.migrate(migrations, lock_name)
    finally:
        await db.disconnect()
