"""Blobs and the links that make a blob visible in a repository.

A blob row says the content exists in storage (stored once, whoever pushed
it); a ``repository_blobs`` row says one repository may see it. Removing a
link queues the digest in ``blob_review_queue`` so the garbage collector
re-checks it later; nothing here deletes content.

`lock_digest` is the one mutual exclusion between putting a blob's file in
place (upload finish) and removing it (garbage collection): both run inside
a write transaction that holds it. On SQLite the write transaction itself is
the lock (``BEGIN IMMEDIATE`` serializes writers); on PostgreSQL it is a
transaction-scoped advisory lock per digest, which also covers a file that
has no blob row to lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from services.registry.metadata import tables as t
from services.registry.metadata.gc_queue import DEFAULT_GRACE_SECONDS, queue_blob_review
from services.registry.metadata.sql import Queryable, executor
from shared.database import DBConnection

__all__ = [
    "BlobRecord",
    "get_blob",
    "get_linked_blob",
    "link_blob",
    "lock_digest",
    "unlink_blob",
]


@dataclass(frozen=True, slots=True)
class BlobRecord:
    digest: str
    size: int
    created_at: float


def _row(row: Any) -> BlobRecord:
    return BlobRecord(str(row["digest"]), int(row["size"]), float(row["created_at"]))


async def get_blob(db: Queryable, digest: str) -> BlobRecord | None:
    row = await executor(db).fetch_one(
        "SELECT digest, size, created_at FROM blobs WHERE digest = :digest", {"digest": digest}
    )
    return None if row is None else _row(row)


async def get_linked_blob(
    db: Queryable, repo_id: str, digest: str, *, share_lock: bool = False
) -> BlobRecord | None:
    """The blob when repository `repo_id` links it; None otherwise, even if stored.

    With `share_lock` (inside a write), the link and blob rows found stay
    share-locked on PostgreSQL until the transaction ends: the sweep cannot
    remove them meanwhile (on SQLite the write transaction already excludes it).
    """
    if not share_lock:
        # SQL text: on SQLite, a read on its own runs on the inline reader's
        # fastest path (shared.database).
        row = await executor(db).fetch_one(
            "SELECT b.digest, b.size, b.created_at FROM repository_blobs l"
            " JOIN blobs b ON b.digest = l.digest WHERE l.repo_id = :repo AND l.digest = :digest",
            {"repo": repo_id, "digest": digest},
        )
        return None if row is None else _row(row)
    link, b = t.repository_blobs, t.blobs
    query = (
        select(b.c.digest, b.c.size, b.c.created_at)
        .join_from(link, b, b.c.digest == link.c.digest)
        .where(link.c.repo_id == repo_id, link.c.digest == digest)
    )
    query = query.with_for_update(read=True)
    row = await executor(db).fetch_one(query)
    return None if row is None else _row(row)


async def link_blob(db: Queryable, repo_id: str, digest: str, size: int) -> None:
    """Record the blob (once) and link it into the repository (idempotent).

    Call inside ``MetadataDB.write()`` and only after the content is in place
    in storage: a link must never point at missing bytes.
    """
    q = executor(db)
    now = time.time()
    await q.execute(
        "INSERT INTO blobs (digest, size, created_at, last_linked_at)"
        " VALUES (:digest, :size, :now, :now)"
        " ON CONFLICT (digest) DO UPDATE SET last_linked_at = excluded.last_linked_at",
        {"digest": digest, "size": size, "now": now},
    )
    await q.execute(
        "INSERT INTO repository_blobs (repo_id, digest, created_at)"
        " VALUES (:repo_id, :digest, :now) ON CONFLICT (repo_id, digest) DO NOTHING",
        {"repo_id": repo_id, "digest": digest, "now": now},
    )


async def lock_digest(conn: DBConnection, digest: str) -> None:
    """Hold the digest's publish/delete lock until the transaction of `conn` ends.

    A per-digest advisory lock on PostgreSQL; on SQLite, ``BEGIN IMMEDIATE``
    already holds the single write lock (across processes too).
    """
    await conn.advisory_lock("blob:" + digest)


async def unlink_blob(
    conn: DBConnection, repo_id: str, digest: str, delay: float = DEFAULT_GRACE_SECONDS
) -> bool:
    """Remove the repository's link; False when there was none. Use inside a write.

    The digest is queued: after `delay` the sweep removes the bytes unless
    another repository (or a manifest) still needs them.
    """
    row = await conn.fetch_one(
        "SELECT digest FROM repository_blobs WHERE repo_id = :repo_id AND digest = :digest",
        {"repo_id": repo_id, "digest": digest},
    )
    if row is None:
        return False
    await conn.execute(
        "DELETE FROM repository_blobs WHERE repo_id = :repo_id AND digest = :digest",
        {"repo_id": repo_id, "digest": digest},
    )
    await queue_blob_review(conn, digest, "link deleted", delay)
    return True
