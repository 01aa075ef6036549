"""Review queues: what the garbage collector must re-check, and from when.

Every event that may leave content unreferenced queues it here, inside the
transaction of the event itself, so a queued item and the change that made
it a candidate commit together:

- ``manifest_review_queue`` (repository, digest): a tag deleted or moved
  away with no other tag left, a manifest pushed by digest alone, the
  children of a deleted index, the referrers of a deleted subject.
- ``blob_review_queue`` (digest): a link deleted, a manifest deleted. Links
  and blobs are found by the sweep's own scan as well (an abandoned push
  queues nothing); a queued digest is a "not before" mark: its links are
  left alone until `review_after`, so a client re-pushing the manifest it
  just deleted still finds its blobs.

Queueing never deletes anything, and re-queueing moves `review_after` to
the newest event's time: the sweep always re-checks the references anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from databases.core import Connection

from services.registry.metadata.sql import Queryable, executor

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "DEFAULT_UNTAGGED_TTL_SECONDS",
    "QueueDepth",
    "ReviewDelays",
    "queue_blob_review",
    "queue_depths",
    "queue_manifest_review",
    "queue_untagged_if_last_tag",
]

DEFAULT_GRACE_SECONDS = 3600.0
DEFAULT_UNTAGGED_TTL_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ReviewDelays:
    """How long queued content waits before the sweep may collect it (from settings).

    `grace`: after a deletion (tag, manifest, link). `untagged_ttl`: a
    manifest pushed by digest without a tag, or a referrer whose subject was
    deleted, stays reachable by digest this long.
    """

    grace: float = DEFAULT_GRACE_SECONDS
    untagged_ttl: float = DEFAULT_UNTAGGED_TTL_SECONDS


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many items one review queue holds: `due` ones the next sweep re-checks."""

    queue: str
    due: int
    waiting: int


async def queue_depths(db: Queryable, now: float) -> list[QueueDepth]:
    """The size of both review queues (for the GC queue depth metric)."""
    rows = await executor(db).fetch_all(
        "SELECT 'manifest' AS queue,"
        " COALESCE(SUM(CASE WHEN review_after <= :now THEN 1 ELSE 0 END), 0) AS due,"
        " COUNT(*) AS total FROM manifest_review_queue"
        " UNION ALL SELECT 'blob',"
        " COALESCE(SUM(CASE WHEN review_after <= :now THEN 1 ELSE 0 END), 0),"
        " COUNT(*) FROM blob_review_queue",
        {"now": now},
    )
    return [
        QueueDepth(str(r["queue"]), int(r["due"]), int(r["total"]) - int(r["due"])) for r in rows
    ]


async def queue_manifest_review(
    conn: Connection, repo_id: str, digest: str, reason: str, delay: float
) -> None:
    """Ask the sweep to re-check manifest `digest` of `repo_id` after `delay` seconds."""
    now = time.time()
    await conn.execute(
        "INSERT INTO manifest_review_queue (repo_id, digest, review_after, reason, created_at)"
        " VALUES (:repo, :digest, :after, :reason, :now)"
        " ON CONFLICT (repo_id, digest) DO UPDATE SET review_after = excluded.review_after,"
        " reason = excluded.reason",
        {"repo": repo_id, "digest": digest, "after": now + delay, "reason": reason, "now": now},
    )


async def queue_blob_review(conn: Connection, digest: str, reason: str, delay: float) -> None:
    """Ask the sweep to leave `digest`'s links alone until `delay` seconds from now."""
    now = time.time()
    await conn.execute(
        "INSERT INTO blob_review_queue (digest, review_after, reason, created_at)"
        " VALUES (:digest, :after, :reason, :now)"
        " ON CONFLICT (digest) DO UPDATE SET review_after = excluded.review_after,"
        " reason = excluded.reason",
        {"digest": digest, "after": now + delay, "reason": reason, "now": now},
    )


async def queue_untagged_if_last_tag(
    conn: Connection, repo_id: str, digest: str, reason: str, delay: float
) -> bool:
    """Queue manifest `digest` when no tag of `repo_id` points at it any more.

    Call after removing or moving a tag, in the same transaction. True when queued.
    """
    tagged = await conn.fetch_val(
        "SELECT 1 FROM tags WHERE repo_id = :repo AND manifest_digest = :digest LIMIT 1",
        {"repo": repo_id, "digest": digest},
    )
    if tagged:
        return False
    await queue_manifest_review(conn, repo_id, digest, reason, delay)
    return True
