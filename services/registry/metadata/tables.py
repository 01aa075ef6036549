"""The registry's tables as SQLAlchemy Core objects, for statements Core writes best.

Most queries are SQL text with bound parameters; these objects serve the ones
where Core says per dialect what the text would need a branch for: row locks
(``with_for_update``: ``FOR UPDATE`` / ``FOR SHARE`` / ``SKIP LOCKED`` on
PostgreSQL, nothing on SQLite, whose write transaction already excludes every
other writer) and expanding ``IN`` lists. The schema itself is made by
``migrations``; a test checks these columns against it on both databases.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, LargeBinary, MetaData, Table, Text

__all__ = [
    "blob_review_queue",
    "blobs",
    "manifest_review_queue",
    "manifests",
    "metadata",
    "repositories",
    "repository_blobs",
    "uploads",
]

metadata = MetaData()

repositories = Table(
    "repositories",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("owner_id", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("last_linked_at", Double, nullable=False),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repo_id", Text, primary_key=True),
    Column("digest", Text, primary_key=True),
    Column("created_at", Double, nullable=False),
)

blob_review_queue = Table(
    "blob_review_queue",
    metadata,
    Column("digest", Text, primary_key=True),
    Column("review_after", Double, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", Text, primary_key=True),
    Column("repo_id", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

manifests = Table(
    "manifests",
    metadata,
    Column("repo_id", Text, primary_key=True),
    Column("digest", Text, primary_key=True),
    Column("media_type", Text, nullable=False),
    Column("artifact_type", Text),
    Column("size", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("subject_digest", Text),
    Column("annotations", Text),
    Column("created_at", Double, nullable=False),
)

manifest_review_queue = Table(
    "manifest_review_queue",
    metadata,
    Column("repo_id", Text, primary_key=True),
    Column("digest", Text, primary_key=True),
    Column("review_after", Double, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)
