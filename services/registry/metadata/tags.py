"""Tags of a repository: listing in bytewise order and deletion.

Tags are written by ``metadata.manifests.store_manifest`` (a tag moves in the
same transaction that stores its manifest) and removed with their manifest by
``delete_manifest``; this module holds what concerns tags alone. Deleting the
last tag of a manifest queues the manifest for the garbage collector; deleting
any tag writes a ``tag.deleted`` event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.registry.events.model import TAG_DELETED
from services.registry.events.recorder import EventRecorder, recorded_write
from services.registry.metadata.gc_queue import DEFAULT_GRACE_SECONDS, queue_untagged_if_last_tag
from services.registry.metadata.sql import Queryable, executor, keyset_page
from shared.database import MetadataDB

__all__ = ["Tag", "delete_tag", "list_tag_names", "list_tags"]


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    digest: str
    size: int
    media_type: str
    updated_at: float


async def list_tag_names(
    db: Queryable, repo_id: str, last: str | None = None, limit: int | None = None
) -> list[str]:
    """Tag names after `last` in bytewise order, at most `limit`.

    Bytewise on both databases: SQLite compares TEXT with BINARY, and the
    PostgreSQL column is declared ``COLLATE "C"``.
    """
    sql = "SELECT name FROM tags WHERE repo_id = :repo"
    values: dict[str, Any] = {"repo": repo_id}
    rows = await executor(db).fetch_all(keyset_page(sql, values, "name", last, limit), values)
    return [str(r["name"]) for r in rows]


async def list_tags(db: Queryable, repo_id: str) -> list[Tag]:
    """Every tag with the digest, size and media type of its manifest, by name."""
    rows = await executor(db).fetch_all(
        "SELECT t.name, t.manifest_digest, t.updated_at, m.size, m.media_type"
        " FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest"
        " WHERE t.repo_id = :repo ORDER BY t.name",
        {"repo": repo_id},
    )
    return [
        Tag(
            name=str(r["name"]),
            digest=str(r["manifest_digest"]),
            size=int(r["size"]),
            media_type=str(r["media_type"]),
            updated_at=float(r["updated_at"]),
        )
        for r in rows
    ]


async def delete_tag(
    db: MetadataDB,
    repo_id: str,
    name: str,
    review_delay: float = DEFAULT_GRACE_SECONDS,
    events: EventRecorder | None = None,
) -> bool:
    """Remove the tag only (its manifest stays, reachable by digest); False when absent.

    When no other tag points at the manifest any more, it is queued for the
    garbage collector, which collects it after `review_delay` seconds unless
    a tag or an index in the repository references it again by then.
    """
    params = {"repo": repo_id, "name": name}
    async with recorded_write(db, events) as conn:
        digest = await conn.fetch_val(
            "SELECT manifest_digest FROM tags WHERE repo_id = :repo AND name = :name", params
        )
        if digest is None:
            return False
        await conn.execute("DELETE FROM tags WHERE repo_id = :repo AND name = :name", params)
        if events is not None:
            await events.record(conn, TAG_DELETED, repo_id, tag=name, digest=str(digest))
        await queue_untagged_if_last_tag(
            conn, repo_id, str(digest), f"tag {name} deleted", review_delay
        )
    return True
