"""The metadata layer on a real SQLite file and the real PostgreSQL: pooling,
pragmas, transactions, expanding lists, Core tables, and the named locks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, inspect

from services.registry.metadata import tables
from services.registry.metadata.migrations import MIGRATIONS
from shared.database import MetadataDB, sqlite_url
from shared.locks import LockBusy
from tests.conftest import ROOT


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "test.db")
    else:
        yield request.getfixturevalue("pg_database")


async def _open(url: str) -> MetadataDB:
    db = MetadataDB(url)
    await db.connect()
    await db.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    return db


def test_sqlite_connections_are_pooled_with_their_pragmas(tmp_path: Path) -> None:
    async def go() -> None:
        db = await _open(sqlite_url(tmp_path / "test.db"))
        connects: list[object] = []
        event.listen(db.engine.sync_engine, "connect", lambda c, r: connects.append(c))
        await db.execute("INSERT INTO t (k, v) VALUES (:k, :v)", {"k": "a", "v": 1})
        for _ in range(50):
            assert await db.fetch_val("SELECT v FROM t WHERE k = :k", {"k": "a"}) == 1
        await asyncio.gather(*(db.fetch_all("SELECT * FROM t") for _ in range(20)))
        # Connections stay open and are reused: a handful, never one per query.
        assert len(connects) <= 15
        async with db.read() as conn:  # a pooled connection
            for pragma, value in (
                ("journal_mode", "wal"),
                ("foreign_keys", 1),
                ("synchronous", 2),  # FULL
                ("busy_timeout", 30000),
            ):
                assert await conn.fetch_val(f"PRAGMA {pragma}") == value
        # A read on its own runs inline on a read-only connection that waits
        # little for a lock (then the pool takes the statement).
        assert await db.fetch_val("PRAGMA query_only") == 1
        assert await db.fetch_val("PRAGMA busy_timeout") == 20
        # A write sent through a fetch method is handed to the pool.
        row = await db.fetch_one(
            "INSERT INTO t (k, v) VALUES (:k, :v) RETURNING v", {"k": "b", "v": 7}
        )
        assert row is not None and row["v"] == 7
        assert await db.fetch_val("SELECT v FROM t WHERE k = 'b'") == 7
        # Core statements and expanding lists take the inline engine's path.
        rows = await db.fetch_all("SELECT k FROM t WHERE k IN :ks ORDER BY k", {"ks": ["a", "b"]})
        assert [r["k"] for r in rows] == ["a", "b"]
        await db.disconnect()

    asyncio.run(go())


def test_writes_wait_for_each_other_and_reads_do_not_wait(url: str) -> None:
    async def go() -> None:
        db = await _open(url)
        await db.execute("INSERT INTO t (k, v) VALUES ('n', 0)")
        inside = asyncio.Event()
        release = asyncio.Event()
        order: list[str] = []

        async def first() -> None:
            async with db.write() as conn:
                await conn.execute("UPDATE t SET v = v + 1 WHERE k = 'n'")
                inside.set()
                await release.wait()
                order.append("first commits")

        async def second() -> None:
            await inside.wait()
            async with db.write() as conn:
                # SQLite: BEGIN IMMEDIATE waited for the first writer's commit.
                # PostgreSQL: the row lock below waits for it.
                order.append("second writes")
                await conn.execute("UPDATE t SET v = v + 1 WHERE k = 'n'")

        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await inside.wait()
        # A reader is not blocked by the open write transaction; it sees the last commit.
        assert await asyncio.wait_for(db.fetch_val("SELECT v FROM t WHERE k = 'n'"), 30) == 0
        await asyncio.sleep(0.2)  # let the second writer reach its lock
        release.set()
        await asyncio.gather(*tasks)
        if db.dialect == "sqlite":
            assert order == ["first commits", "second writes"]
        assert await db.fetch_val("SELECT v FROM t WHERE k = 'n'") == 2  # no lost update
        await db.disconnect()

    asyncio.run(go())


def test_transaction_shapes_and_expanding_lists(url: str) -> None:
    async def go() -> None:
        db = await _open(url)
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await conn.execute("INSERT INTO t (k, v) VALUES ('gone', 1)")
                raise RuntimeError("rolled back")
        assert await db.fetch_one("SELECT * FROM t WHERE k = 'gone'") is None
        async with db.write() as conn:
            await conn.execute_many(
                "INSERT INTO t (k, v) VALUES (:k, :v)", [{"k": f"k{i}", "v": i} for i in range(5)]
            )
            # The db's own methods join this task's transaction (no second connection).
            assert await db.fetch_val("SELECT COUNT(*) FROM t") == 5
            with pytest.raises(RuntimeError):
                async with db.write() as nested:  # a savepoint
                    await nested.execute("DELETE FROM t")
                    raise RuntimeError("only the savepoint goes")
        rows = await db.fetch_all(
            "SELECT k, v FROM t WHERE k IN :keys ORDER BY k", {"keys": ["k1", "k3", "zz"]}
        )
        assert [(r["k"], r["v"]) for r in rows] == [("k1", 1), ("k3", 3)]
        assert await db.fetch_all("SELECT k FROM t WHERE k IN :keys", {"keys": []}) == []
        assert await db.execute("UPDATE t SET v = 0 WHERE k IN :keys", {"keys": ("k0", "k4")}) == 2
        async with db.read() as conn:
            assert await conn.fetch_val("SELECT SUM(v) FROM t") == 1 + 2 + 3
        await db.disconnect()

    asyncio.run(go())


def test_core_tables_match_the_migrated_schema(url: str) -> None:
    async def go() -> None:
        db = MetadataDB(url)
        await db.connect()
        await db.migrate(MIGRATIONS, "test")
        async with db.engine.connect() as conn:
            for table in tables.metadata.tables.values():
                columns = await conn.run_sync(
                    lambda c, name=table.name: {col["name"] for col in inspect(c).get_columns(name)}
                )
                assert {c.name for c in table.columns} == columns, table.name
        await db.disconnect()

    asyncio.run(go())


_HOLDER = """
import asyncio, sys
sys.path.insert(0, {root!r})
from shared.database import MetadataDB

async def main():
    db = MetadataDB({url!r})
    await db.connect()
    async with db.locks.hold("upload:x"):
        print("held", flush=True)
        sys.stdin.readline()

asyncio.run(main())
"""


def test_named_locks_hold_across_processes_and_die_with_them(url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER.format(root=str(ROOT), url=url)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        async def try_hold() -> bool:
            db = MetadataDB(url)
            await db.connect()
            try:
                async with db.locks.hold("upload:x", wait=0.2), db.locks.hold("upload:y"):
                    # Within one process a held name is not granted twice either.
                    with pytest.raises(LockBusy):
                        async with db.locks.hold("upload:y"):
                            pass
                    return True
            except LockBusy:
                return False
            finally:
                await db.disconnect()

        assert not asyncio.run(try_hold())
        holder.kill()  # dies holding it: the lock goes with it
        holder.wait(30)
        assert asyncio.run(try_hold())
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()
