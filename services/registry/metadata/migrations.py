"""Schema versions of the registry database."""

from __future__ import annotations

from shared.database import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "repositories",
        """
        CREATE TABLE repositories (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            owner_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX repositories_owner ON repositories (owner_id, name)
        """,
    ),
    Migration(
        2,
        "blobs, repository blob links, uploads",
        # blobs: content stored once, whoever pushed it. last_linked_at moves on
        # every (re)link so a sweep can keep anything linked within its grace
        # period. repository_blobs: which repository may see which blob.
        # blob_review_queue: digests whose last link may be gone, for the GC to
        # re-check after review_after. uploads: in-progress uploads, so any
        # replica (or a restarted process) can continue one; updated_at lets
        # the GC find abandoned ones.
        """
        CREATE TABLE blobs (
            digest TEXT PRIMARY KEY,
            size BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            last_linked_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE repository_blobs (
            repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
            digest TEXT NOT NULL REFERENCES blobs (digest),
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (repo_id, digest)
        );
        CREATE INDEX repository_blobs_digest ON repository_blobs (digest);
        CREATE TABLE blob_review_queue (
            digest TEXT PRIMARY KEY,
            review_after DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX blob_review_queue_due ON blob_review_queue (review_after);
        CREATE TABLE uploads (
            id TEXT PRIMARY KEY,
            repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
            size BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX uploads_updated ON uploads (updated_at)
        """,
    ),
]
