"""Manifests of a repository: stored bytes, references, deletion, referrers.

A manifest row holds the exact pushed bytes and what the referrers API needs.
Its references are rows too, written in the same transaction as the manifest:
``manifest_blobs`` (config and layers) and ``manifest_children`` (an index's
manifests); the subject is ``manifests.subject_digest``. The checks that every
referenced blob is linked in the repository and every child manifest exists
run inside that transaction and, on PostgreSQL, share-lock the rows they
found, so a concurrent unlink or sweep either waits for the push or makes it
fail cleanly — never leaves a manifest pointing at nothing. The manifest row
itself is written with an upsert that locks it, so a sweep re-checking the
same manifest runs entirely before or entirely after the push.

Everything that may leave a manifest or blob unreferenced queues it for the
garbage collector in the same transaction (``gc_queue``), and every push or
deletion writes its event there too (``events.recorder``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from services.registry.events.model import MANIFEST_DELETED, MANIFEST_PUSHED
from services.registry.events.recorder import EventRecorder, recorded_write
from services.registry.manifest_schema import Descriptor, ManifestError, ParsedManifest
from services.registry.metadata.gc_queue import (
    ReviewDelays,
    queue_blob_review,
    queue_manifest_review,
    queue_untagged_if_last_tag,
)
from services.registry.metadata.sql import Queryable, chunks, executor
from services.registry.metadata.tables import blobs as blob_rows
from services.registry.metadata.tables import manifests, repository_blobs
from shared.database import DBConnection, MetadataDB

__all__ = [
    "Referrer",
    "StoredManifest",
    "delete_manifest",
    "get_manifest",
    "get_tagged_manifest",
    "list_referrers",
    "lock_manifest",
    "remove_manifest",
    "store_manifest",
]

# Queries below interpolate only constant column lists; every value is a
# bound parameter.


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: str
    media_type: str
    size: int
    payload: bytes
    subject_digest: str | None
    artifact_type: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Referrer:
    """One entry of a referrers response: a descriptor of a manifest with a subject."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: Mapping[str, str] | None

    def descriptor(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        if self.annotations:
            entry["annotations"] = dict(self.annotations)
        return entry


_COLUMNS = "digest, media_type, size, payload, subject_digest, artifact_type, created_at"


def _stored(row: Any) -> StoredManifest:
    return StoredManifest(
        digest=str(row["digest"]),
        media_type=str(row["media_type"]),
        size=int(row["size"]),
        payload=bytes(row["payload"]),
        subject_digest=row["subject_digest"],
        artifact_type=row["artifact_type"],
        created_at=float(row["created_at"]),
    )


async def get_manifest(db: Queryable, repo_id: str, digest: str) -> StoredManifest | None:
    row = await executor(db).fetch_one(
        f"SELECT {_COLUMNS} FROM manifests WHERE repo_id = :repo AND digest = :digest",  # noqa: S608
        {"repo": repo_id, "digest": digest},
    )
    return None if row is None else _stored(row)


async def get_tagged_manifest(db: Queryable, repo_id: str, tag: str) -> StoredManifest | None:
    columns = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
    row = await executor(db).fetch_one(
        f"SELECT {columns} FROM tags t JOIN manifests m"  # noqa: S608
        " ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest"
        " WHERE t.repo_id = :repo AND t.name = :tag",
        {"repo": repo_id, "tag": tag},
    )
    return None if row is None else _stored(row)


async def _found_sizes(
    conn: DBConnection, repo_id: str, digests: Sequence[str], *, blobs: bool
) -> dict[str, int]:
    """Digest → size of the linked blobs (or stored manifests) among `digests`.

    The rows found stay share-locked on PostgreSQL until the transaction
    ends (``FOR SHARE``; SQLite's write transaction already excludes others).
    """
    found: dict[str, int] = {}
    for batch in chunks(sorted(set(digests))):
        query: Select[Any]
        if blobs:
            rb = repository_blobs
            query = (
                select(rb.c.digest, blob_rows.c.size)
                .join_from(rb, blob_rows, blob_rows.c.digest == rb.c.digest)
                .where(rb.c.repo_id == repo_id, rb.c.digest.in_(batch))
                .with_for_update(read=True, of=rb)
            )
        else:
            m = manifests
            query = (
                select(m.c.digest, m.c.size)
                .where(m.c.repo_id == repo_id, m.c.digest.in_(batch))
                .with_for_update(read=True)
            )
        for row in await conn.fetch_all(query):
            found[str(row["digest"])] = int(row["size"])
    return found


def _check(found: Mapping[str, int], wanted: Sequence[Descriptor], kind: str) -> None:
    missing = [d.digest for d in wanted if d.digest not in found]
    if missing:
        raise ManifestError(
            "MANIFEST_BLOB_UNKNOWN",
            f"{len(missing)} referenced {kind}(s) unknown to this repository, first {missing[0]}",
            {"digest": missing[0], "missing": missing[:100]},
            status=400,
        )
    for descriptor in wanted:
        actual = found[descriptor.digest]
        if actual != descriptor.size:
            raise ManifestError(
                "MANIFEST_INVALID",
                f"descriptor of {descriptor.digest} says size {descriptor.size},"
                f" the stored {kind} has {actual} bytes",
                {"digest": descriptor.digest, "size": descriptor.size, "actual": actual},
            )


def _is_integrity_error(exc: Exception) -> bool:
    # sqlite3.IntegrityError and asyncpg's IntegrityConstraintViolationError
    # subclasses: matched by name so neither driver must be importable.
    return any(
        cls.__name__ in ("IntegrityError", "IntegrityConstraintViolationError")
        for cls in type(exc).__mro__
    )


async def store_manifest(
    db: MetadataDB,
    repo_id: str,
    manifest: ParsedManifest,
    tag: str | None,
    delays: ReviewDelays | None = None,
    events: EventRecorder | None = None,
) -> None:
    """Record `manifest` and its references, and point `tag` at it, atomically.

    Raises `ManifestError` MANIFEST_BLOB_UNKNOWN when a config or layer blob is
    not linked in the repository or a child manifest is not stored in it —
    also when one vanished under a concurrent sweep (a foreign key refused).
    """
    try:
        await _store(db, repo_id, manifest, tag, delays or ReviewDelays(), events)
    except ManifestError:
        raise
    except Exception as exc:
        if not _is_integrity_error(exc):
            raise
        raise ManifestError(
            "MANIFEST_BLOB_UNKNOWN",
            "a referenced blob or manifest was removed while the manifest was stored; push again",
            {"digest": manifest.digest},
            status=400,
        ) from exc


async def _store(
    db: MetadataDB,
    repo_id: str,
    manifest: ParsedManifest,
    tag: str | None,
    delays: ReviewDelays,
    events: EventRecorder | None,
) -> None:
    now = time.time()
    async with recorded_write(db, events) as conn:
        blobs = manifest.blobs
        found = await _found_sizes(conn, repo_id, [d.digest for d in blobs], blobs=True)
        _check(found, blobs, "blob")
        children = manifest.manifests
        found = await _found_sizes(conn, repo_id, [d.digest for d in children], blobs=False)
        _check(found, children, "manifest")
        await conn.execute(
            "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, size, payload,"
            " subject_digest, annotations, created_at) VALUES (:repo, :digest, :media_type,"
            " :artifact_type, :size, :payload, :subject, :annotations, :now)"
            # A no-op update rather than DO NOTHING: it locks an existing row,
            # so a sweep deciding about this manifest waits for the push.
            " ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = manifests.created_at",
            {
                "repo": repo_id,
                "digest": manifest.digest,
                "media_type": manifest.media_type,
                "artifact_type": manifest.effective_artifact_type,
                "size": manifest.size,
                "payload": manifest.payload,
                "subject": manifest.subject.digest if manifest.subject else None,
                "annotations": json.dumps(dict(manifest.annotations))
                if manifest.annotations
                else None,
                "now": now,
            },
        )
        blob_digests = sorted({d.digest for d in blobs})
        if blob_digests:
            await conn.execute_many(
                "INSERT INTO manifest_blobs (repo_id, manifest_digest, blob_digest)"
                " VALUES (:repo, :manifest, :blob) ON CONFLICT DO NOTHING",
                [{"repo": repo_id, "manifest": manifest.digest, "blob": d} for d in blob_digests],
            )
        child_digests = sorted({d.digest for d in children})
        if child_digests:
            await conn.execute_many(
                "INSERT INTO manifest_children (repo_id, parent_digest, child_digest)"
                " VALUES (:repo, :parent, :child) ON CONFLICT DO NOTHING",
                [{"repo": repo_id, "parent": manifest.digest, "child": d} for d in child_digests],
            )
        if events is not None:
            await events.record(
                conn,
                MANIFEST_PUSHED,
                repo_id,
                tag=tag,
                digest=manifest.digest,
                mediaType=manifest.media_type,
                size=manifest.size,
                artifactType=manifest.effective_artifact_type,
                subject=manifest.subject.digest if manifest.subject else None,
            )
        if tag is None:
            await queue_manifest_review(
                conn, repo_id, manifest.digest, "pushed untagged", delays.untagged_ttl
            )
            return
        previous = await conn.fetch_val(
            "SELECT manifest_digest FROM tags WHERE repo_id = :repo AND name = :tag",
            {"repo": repo_id, "tag": tag},
        )
        await conn.execute(
            "INSERT INTO tags (repo_id, name, manifest_digest, updated_at)"
            " VALUES (:repo, :tag, :digest, :now) ON CONFLICT (repo_id, name)"
            " DO UPDATE SET manifest_digest = excluded.manifest_digest,"
            " updated_at = excluded.updated_at",
            {"repo": repo_id, "tag": tag, "digest": manifest.digest, "now": now},
        )
        if previous is not None and previous != manifest.digest:
            await queue_untagged_if_last_tag(
                conn, repo_id, str(previous), f"tag {tag} moved", delays.grace
            )


async def delete_manifest(
    db: MetadataDB,
    repo_id: str,
    digest: str,
    delays: ReviewDelays | None = None,
    events: EventRecorder | None = None,
) -> bool:
    """Remove the manifest, its reference rows and every tag on it; False when absent.

    What it referenced is queued for the garbage collector, which decides
    what nothing references any more: its blobs (they stay linked in the
    repository until then), an index's child manifests, and the referrers
    whose subject it was (reachable by digest for the untagged TTL).
    """
    async with recorded_write(db, events) as conn:
        return await remove_manifest(conn, repo_id, digest, delays or ReviewDelays(), events)


def lock_manifest(repo_id: str, digest: str) -> Select[Any]:
    """The manifest's digest, row-locked (``FOR UPDATE``) on PostgreSQL."""
    m = manifests
    return select(m.c.digest).where(m.c.repo_id == repo_id, m.c.digest == digest).with_for_update()


async def remove_manifest(
    conn: DBConnection,
    repo_id: str,
    digest: str,
    delays: ReviewDelays,
    events: EventRecorder | None = None,
) -> bool:
    """`delete_manifest` inside the caller's write transaction (the sweep uses it too)."""
    params = {"repo": repo_id, "digest": digest}
    m = manifests
    found = await conn.fetch_one(
        select(m.c.media_type, m.c.size)
        .where(m.c.repo_id == repo_id, m.c.digest == digest)
        .with_for_update()
    )
    if found is None:
        return False
    if events is not None:
        tags = await conn.fetch_all(
            "SELECT name FROM tags WHERE repo_id = :repo AND manifest_digest = :digest"
            " ORDER BY name",
            params,
        )
        await events.record(
            conn,
            MANIFEST_DELETED,
            repo_id,
            digest=digest,
            mediaType=str(found["media_type"]),
            size=int(found["size"]),
            tags=[str(t["name"]) for t in tags],
        )
    for row in await conn.fetch_all(
        # Sorted: concurrent deletions queue shared digests in one order.
        "SELECT blob_digest FROM manifest_blobs"
        " WHERE repo_id = :repo AND manifest_digest = :digest ORDER BY blob_digest",
        params,
    ):
        await queue_blob_review(conn, str(row["blob_digest"]), "manifest deleted", delays.grace)
    for row in await conn.fetch_all(
        "SELECT child_digest FROM manifest_children"
        " WHERE repo_id = :repo AND parent_digest = :digest ORDER BY child_digest",
        params,
    ):
        await queue_manifest_review(
            conn, repo_id, str(row["child_digest"]), "index deleted", delays.grace
        )
    for row in await conn.fetch_all(
        "SELECT digest FROM manifests WHERE repo_id = :repo AND subject_digest = :digest"
        " ORDER BY digest",
        params,
    ):
        await queue_manifest_review(
            conn, repo_id, str(row["digest"]), "subject deleted", delays.untagged_ttl
        )
    # Explicit deletes: SQLite enforces foreign keys only when asked to.
    await conn.execute(
        "DELETE FROM tags WHERE repo_id = :repo AND manifest_digest = :digest", params
    )
    await conn.execute(
        "DELETE FROM manifest_blobs WHERE repo_id = :repo AND manifest_digest = :digest", params
    )
    await conn.execute(
        "DELETE FROM manifest_children WHERE repo_id = :repo AND parent_digest = :digest", params
    )
    await conn.execute("DELETE FROM manifests WHERE repo_id = :repo AND digest = :digest", params)
    await conn.execute(
        "DELETE FROM manifest_review_queue WHERE repo_id = :repo AND digest = :digest", params
    )
    return True


async def list_referrers(
    db: Queryable, repo_id: str, subject: str, artifact_type: str | None = None
) -> list[Referrer]:
    """Manifests of the repository whose subject is `subject`, oldest first."""
    sql = (
        "SELECT digest, media_type, size, artifact_type, annotations FROM manifests"
        " WHERE repo_id = :repo AND subject_digest = :subject"
    )
    values: dict[str, Any] = {"repo": repo_id, "subject": subject}
    if artifact_type is not None:
        sql += " AND artifact_type = :artifact_type"
        values["artifact_type"] = artifact_type
    sql += " ORDER BY created_at, digest"
    rows = await executor(db).fetch_all(sql, values)
    return [
        Referrer(
            digest=str(r["digest"]),
            media_type=str(r["media_type"]),
            size=int(r["size"]),
            artifact_type=r["artifact_type"],
            annotations=json.loads(r["annotations"]) if r["annotations"] else None,
        )
        for r in rows
    ]
