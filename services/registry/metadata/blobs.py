"""Blobs and the links that make a blob visible in a repository.

A blob row says the content exists in storage (stored once, whoever pushed
it); a ``repository_blobs`` row says one repository may see it. Removing a
link queues the digest in ``blob_review_queue`` so the garbage collector
re-checks it later; nothing here deletes content.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from services.registry.metadata.sql import Queryable, executor

__all__ = [
    "REVIEW_DELAY_SECONDS",
    "BlobRecord",
    "get_blob",
    "get_linked_blob",
    "link_blob",
    "queue_for_review",
    "unlink_blob",
]

# How long a digest whose link went away waits before the GC looks at it.
REVIEW_DELAY_SECONDS = 24 * 3600.0


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


async def get_linked_blob(db: Queryable, repo_id: str, digest: str) -> BlobRecord | None:
    """The blob when repository `repo_id` links it; None otherwise, even if stored."""
    row = await executor(db).fetch_one(
        "SELECT b.digest, b.size, b.created_at FROM repository_blobs l"
        " JOIN blobs b ON b.digest = l.digest"
        " WHERE l.repo_id = :repo_id AND l.digest = :digest",
        {"repo_id": repo_id, "digest": digest},
    )
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


async def queue_for_review(
    db: Queryable, digest: str, reason: str, delay: float = REVIEW_DELAY_SECONDS
) -> None:
    await executor(db).execute(
        "INSERT INTO blob_review_queue (digest, review_after, reason, created_at)"
        " VALUES (:digest, :after, :reason, :now)"
        " ON CONFLICT (digest) DO UPDATE SET review_after = excluded.review_after,"
        " reason = excluded.reason",
        {"digest": digest, "after": time.time() + delay, "reason": reason, "now": time.time()},
    )


async def unlink_blob(db: Queryable, repo_id: str, digest: str) -> bool:
    """Remove the repository's link; False when there was none. Use inside a write."""
    q = executor(db)
    row = await q.fetch_one(
        "SELECT digest FROM repository_blobs WHERE repo_id = :repo_id AND digest = :digest",
        {"repo_id": repo_id, "digest": digest},
    )
    if row is None:
        return False
    await q.execute(
        "DELETE FROM repository_blobs WHERE repo_id = :repo_id AND digest = :digest",
        {"repo_id": repo_id, "digest": digest},
    )
    await queue_for_review(q, digest, "link deleted")
    return True
