"""The garbage collector's queries: candidates, and the re-check before each deletion.

Candidates are found with plain reads (they may be stale by the time they
are acted on). Each deletion then runs in its own write transaction that
locks the row it is about to delete (``FOR UPDATE`` on PostgreSQL; SQLite's
write transaction excludes every other writer) and re-checks, with fresh
reads, everything that would make it still needed. See ``services.registry.gc``
for why that is enough.

A queue entry is due when its ``review_after`` has passed, or, when an
operator's sweep overrides the grace (``gc --grace N``), when it was queued
before `queued_before` (N seconds ago); `NEVER` leaves only the first rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, or_, select

from services.registry.events.model import REPOSITORY_EMPTIED
from services.registry.events.recorder import EventRecorder
from services.registry.metadata import tables as t
from services.registry.metadata.gc_queue import ReviewDelays
from services.registry.metadata.manifests import lock_manifest, remove_manifest
from services.registry.metadata.sql import Queryable, chunks, executor
from shared.database import DBConnection

__all__ = [
    "NEVER",
    "Candidate",
    "blob_candidates",
    "collect_blob_row",
    "collect_link",
    "collect_manifest",
    "collect_upload",
    "delete_blob_row",
    "existing_blob_digests",
    "existing_upload_ids",
    "forget_due_blob_reviews",
    "link_candidates",
    "manifest_candidates",
    "manifest_is_referenced",
    "upload_candidates",
]

_BATCH = 500
# `queued_before` when no override applies: no entry was queued before it.
NEVER = -1.0
_DUE = "(q.review_after <= :now OR q.created_at <= :queued_before)"


@dataclass(frozen=True, slots=True)
class Candidate:
    """Something the sweep may delete: `key` identifies it, `label` is for people."""

    key: tuple[str, ...]
    label: str
    size: int


# -- manifests ---------------------------------------------------------------


async def manifest_candidates(
    db: Queryable, now: float, after: tuple[str, str], queued_before: float = NEVER
) -> list[Candidate]:
    """Due queue entries after the (repo_id, digest) cursor."""
    rows = await executor(db).fetch_all(
        "SELECT q.repo_id, q.digest, r.name, m.size FROM manifest_review_queue q"  # noqa: S608
        " LEFT JOIN repositories r ON r.id = q.repo_id"
        " LEFT JOIN manifests m ON m.repo_id = q.repo_id AND m.digest = q.digest"
        f" WHERE {_DUE} AND (q.repo_id > :repo OR"
        " (q.repo_id = :repo AND q.digest > :digest))"
        " ORDER BY q.repo_id, q.digest LIMIT :limit",
        {
            "now": now,
            "queued_before": queued_before,
            "repo": after[0],
            "digest": after[1],
            "limit": _BATCH,
        },
    )
    return [
        Candidate(
            (str(r["repo_id"]), str(r["digest"])),
            f"{r['name'] or r['repo_id']}@{r['digest']}",
            int(r["size"] or 0),
        )
        for r in rows
    ]


async def manifest_is_referenced(db: Queryable, repo_id: str, digest: str) -> bool:
    """A tag, an index of the repository, or (for a referrer) its existing subject."""
    q = executor(db)
    params = {"repo": repo_id, "digest": digest}
    return bool(
        await q.fetch_val(
            "SELECT 1 FROM tags WHERE repo_id = :repo AND manifest_digest = :digest LIMIT 1",
            params,
        )
        or await q.fetch_val(
            "SELECT 1 FROM manifest_children WHERE repo_id = :repo AND child_digest = :digest"
            " LIMIT 1",
            params,
        )
        or await q.fetch_val(
            "SELECT 1 FROM manifests m JOIN manifests s"
            " ON s.repo_id = m.repo_id AND s.digest = m.subject_digest"
            " WHERE m.repo_id = :repo AND m.digest = :digest",
            params,
        )
    )


async def collect_manifest(
    conn: DBConnection,
    repo_id: str,
    digest: str,
    now: float,
    delays: ReviewDelays,
    queued_before: float = NEVER,
    events: EventRecorder | None = None,
) -> bool:
    """Delete the queued manifest if it is still due and unreferenced. Inside a write.

    Locks the manifest row before touching its queue entry, the order a
    push takes them in (manifest upsert, then queue), so the two never wait
    on each other in a cycle. The queue entry goes unless a newer event
    moved its review_after past `now`; a manifest referenced again is
    re-queued by whatever unreferences it next. With `events`, the deletion
    writes ``manifest.deleted``, and ``repository.emptied`` when it was the
    repository's last manifest.
    """
    params = {"repo": repo_id, "digest": digest, "now": now, "queued_before": queued_before}
    exists = await conn.fetch_val(lock_manifest(repo_id, digest))
    due = await conn.fetch_val(
        "SELECT 1 FROM manifest_review_queue q"  # noqa: S608
        f" WHERE q.repo_id = :repo AND q.digest = :digest AND {_DUE}",
        params,
    )
    if not due:
        return False
    if exists and not await manifest_is_referenced(conn, repo_id, digest):
        removed = await remove_manifest(conn, repo_id, digest, delays, events)
        if removed and events is not None:
            left = await conn.fetch_val(
                "SELECT 1 FROM manifests WHERE repo_id = :repo LIMIT 1", {"repo": repo_id}
            )
            if not left:
                await events.record(conn, REPOSITORY_EMPTIED, repo_id)
        return removed
    # Conditional: a push that re-queued it meanwhile keeps its newer entry.
    await conn.execute(
        "DELETE FROM manifest_review_queue"
        " WHERE repo_id = :repo AND digest = :digest"
        " AND (review_after <= :now OR created_at <= :queued_before)",
        params,
    )
    return False


# -- repository blob links ----------------------------------------------------

_UNNEEDED_LINK = (
    " NOT EXISTS (SELECT 1 FROM manifest_blobs mb"
    " WHERE mb.blob_digest = rb.digest AND mb.repo_id = rb.repo_id)"
    " AND NOT EXISTS (SELECT 1 FROM blob_review_queue q"
    " WHERE q.digest = rb.digest AND q.review_after > :now AND q.created_at > :queued_before)"
)


async def link_candidates(
    db: Queryable, cutoff: float, now: float, after: tuple[str, str], queued_before: float = NEVER
) -> list[Candidate]:
    """Links older than `cutoff` that no manifest of their repository references."""
    rows = await executor(db).fetch_all(
        "SELECT rb.repo_id, rb.digest, r.name, b.size FROM repository_blobs rb"  # noqa: S608
        " JOIN repositories r ON r.id = rb.repo_id JOIN blobs b ON b.digest = rb.digest"
        f" WHERE rb.created_at < :cutoff AND {_UNNEEDED_LINK}"
        " AND (rb.repo_id > :repo OR (rb.repo_id = :repo AND rb.digest > :digest))"
        " ORDER BY rb.repo_id, rb.digest LIMIT :limit",
        {
            "cutoff": cutoff,
            "now": now,
            "queued_before": queued_before,
            "repo": after[0],
            "digest": after[1],
            "limit": _BATCH,
        },
    )
    return [
        Candidate(
            (str(r["repo_id"]), str(r["digest"])), f"{r['name']}@{r['digest']}", int(r["size"])
        )
        for r in rows
    ]


async def collect_link(
    conn: DBConnection,
    repo_id: str,
    digest: str,
    cutoff: float,
    now: float,
    queued_before: float = NEVER,
) -> bool:
    """Delete the link if it is still old and unneeded. Inside a write."""
    params = {
        "repo": repo_id,
        "digest": digest,
        "cutoff": cutoff,
        "now": now,
        "queued_before": queued_before,
    }
    # Lock first, check after: on PostgreSQL a manifest PUT share-locks the
    # links it relies on, so this waits for it and then sees its references.
    rb = t.repository_blobs
    locked = await conn.fetch_val(
        select(rb.c.digest)
        .where(rb.c.repo_id == repo_id, rb.c.digest == digest, rb.c.created_at < cutoff)
        .with_for_update()
    )
    if locked is None:
        return False
    unneeded = await conn.fetch_val(
        f"SELECT 1 FROM repository_blobs rb WHERE rb.repo_id = :repo AND rb.digest = :digest"  # noqa: S608
        f" AND rb.created_at < :cutoff AND {_UNNEEDED_LINK}",
        params,
    )
    if not unneeded:
        return False
    await conn.execute(
        "DELETE FROM repository_blobs WHERE repo_id = :repo AND digest = :digest",
        {"repo": repo_id, "digest": digest},
    )
    return True


# -- blobs --------------------------------------------------------------------

_UNNEEDED_BLOB = (
    "b.last_linked_at < :cutoff"
    " AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)"
    " AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_digest = b.digest)"
    " AND NOT EXISTS (SELECT 1 FROM blob_review_queue q"
    " WHERE q.digest = b.digest AND q.review_after > :now AND q.created_at > :queued_before)"
)


async def blob_candidates(
    db: Queryable, cutoff: float, now: float, after: str, queued_before: float = NEVER
) -> list[Candidate]:
    """Stored blobs no repository links or manifest references, last linked before `cutoff`."""
    rows = await executor(db).fetch_all(
        f"SELECT b.digest, b.size FROM blobs b WHERE {_UNNEEDED_BLOB}"  # noqa: S608
        " AND b.digest > :after ORDER BY b.digest LIMIT :limit",
        {
            "cutoff": cutoff,
            "now": now,
            "queued_before": queued_before,
            "after": after,
            "limit": _BATCH,
        },
    )
    return [Candidate((str(r["digest"]),), str(r["digest"]), int(r["size"])) for r in rows]


async def collect_blob_row(
    conn: DBConnection,
    digest: str,
    cutoff: float,
    now: float,
    queued_before: float = NEVER,
) -> bool:
    """Lock the blob row and re-check it is unneeded; True when the caller may delete.

    The caller holds the digest's lock (``lock_digest``), deletes the file,
    then calls `delete_blob_row`, all before the commit.
    """
    locked = await conn.fetch_val(
        select(t.blobs.c.digest).where(t.blobs.c.digest == digest).with_for_update()
    )
    if locked is None:
        return False
    unneeded = await conn.fetch_val(
        f"SELECT 1 FROM blobs b WHERE b.digest = :digest AND {_UNNEEDED_BLOB}",  # noqa: S608
        {"digest": digest, "cutoff": cutoff, "now": now, "queued_before": queued_before},
    )
    return bool(unneeded)


async def delete_blob_row(conn: DBConnection, digest: str) -> None:
    await conn.execute("DELETE FROM blobs WHERE digest = :digest", {"digest": digest})
    await conn.execute("DELETE FROM blob_review_queue WHERE digest = :digest", {"digest": digest})


async def existing_blob_digests(db: Queryable, digests: list[str]) -> set[str]:
    found: set[str] = set()
    for batch in chunks(digests):
        column = t.blobs.c.digest
        rows = await executor(db).fetch_all(select(column).where(column.in_(batch)))
        found.update(str(r["digest"]) for r in rows)
    return found


async def forget_due_blob_reviews(
    conn: DBConnection, now: float, queued_before: float = NEVER
) -> None:
    """Due "not before" marks have done their job: the scans cover what they named.

    On PostgreSQL rows being re-queued right now are skipped, never waited
    for (``FOR UPDATE SKIP LOCKED``): a bulk delete must not deadlock with a
    manifest deletion. SQLite's write transaction has no one to skip.
    """
    q = t.blob_review_queue
    is_due = or_(q.c.review_after <= now, q.c.created_at <= queued_before)
    due = select(q.c.digest).where(is_due).with_for_update(skip_locked=True)
    await conn.execute(delete(q).where(q.c.digest.in_(due), is_due))


# -- uploads ------------------------------------------------------------------


async def upload_candidates(db: Queryable, cutoff: float, after: str) -> list[Candidate]:
    rows = await executor(db).fetch_all(
        "SELECT u.id, u.size, r.name FROM uploads u JOIN repositories r ON r.id = u.repo_id"
        " WHERE u.updated_at < :cutoff AND u.id > :after ORDER BY u.id LIMIT :limit",
        {"cutoff": cutoff, "after": after, "limit": _BATCH},
    )
    return [
        Candidate((str(r["id"]),), f"{r['name']} upload {r['id']}", int(r["size"])) for r in rows
    ]


async def collect_upload(conn: DBConnection, upload_id: str, cutoff: float) -> bool:
    """Delete the upload row if it is still idle since before `cutoff`. Inside a write."""
    u = t.uploads
    idle = await conn.fetch_val(
        select(u.c.id).where(u.c.id == upload_id, u.c.updated_at < cutoff).with_for_update()
    )
    if idle is None:
        return False
    await conn.execute("DELETE FROM uploads WHERE id = :id", {"id": upload_id})
    return True


async def existing_upload_ids(db: Queryable, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for batch in chunks(ids):
        column = t.uploads.c.id
        rows = await executor(db).fetch_all(select(column).where(column.in_(batch)))
        found.update(str(r["id"]) for r in rows)
    return found
