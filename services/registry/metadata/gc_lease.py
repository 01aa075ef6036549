"""The garbage collector's lease: one sweep at a time across replicas and the CLI.

A lease is a row (name, holder, expires_at). Taking it is one upsert that
only overwrites a row held by the same holder or already expired, followed by
reading back who holds it; that works the same on SQLite and PostgreSQL.
A sweep renews its lease while it runs; a sweep that dies simply stops
renewing, and the next one may start once the lease has expired.
"""

from __future__ import annotations

import time

from shared.database import MetadataDB

__all__ = ["LEASE_NAME", "acquire_lease", "lease_holder", "release_lease"]

LEASE_NAME = "gc"


async def acquire_lease(db: MetadataDB, holder: str, ttl: float, name: str = LEASE_NAME) -> bool:
    """Take or renew the lease for `ttl` seconds; False while someone else holds it."""
    now = time.time()
    async with db.write() as conn:
        await conn.execute(
            "INSERT INTO gc_lease (name, holder, expires_at) VALUES (:name, :holder, :expires)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at"
            " WHERE gc_lease.holder = excluded.holder OR gc_lease.expires_at <= :now",
            {"name": name, "holder": holder, "expires": now + ttl, "now": now},
        )
        current = await conn.fetch_val(
            "SELECT holder FROM gc_lease WHERE name = :name", {"name": name}
        )
    return bool(current == holder)


async def release_lease(db: MetadataDB, holder: str, name: str = LEASE_NAME) -> None:
    async with db.write() as conn:
        await conn.execute(
            "DELETE FROM gc_lease WHERE name = :name AND holder = :holder",
            {"name": name, "holder": holder},
        )


async def lease_holder(db: MetadataDB, name: str = LEASE_NAME) -> str | None:
    """Who holds an unexpired lease, or None."""
    row = await db.fetch_one(
        "SELECT holder FROM gc_lease WHERE name = :name AND expires_at > :now",
        {"name": name, "now": time.time()},
    )
    return None if row is None else str(row["holder"])
