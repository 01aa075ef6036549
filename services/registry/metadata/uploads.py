"""In-progress blob uploads: which repository, and how many bytes are committed.

`size` is the committed length: bytes beyond it in storage belong to a
request that never finished and are dropped by the next write.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from services.registry.metadata.sql import Queryable, executor
from services.registry.metadata.tables import uploads

__all__ = [
    "Upload",
    "advance_upload",
    "claim_upload",
    "create_upload",
    "delete_upload",
    "get_upload",
    "lock_name",
]


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    repo_id: str
    size: int
    created_at: float
    updated_at: float


def _row(row: Any) -> Upload:
    return Upload(
        id=str(row["id"]),
        repo_id=str(row["repo_id"]),
        size=int(row["size"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def lock_name(upload_id: str) -> str:
    """The name of the lock (``MetadataDB.locks``) a request holds while writing an upload."""
    return "upload:" + upload_id


async def create_upload(db: Queryable, repo_id: str) -> Upload:
    now = time.time()
    upload = Upload(str(uuid.uuid4()), repo_id, 0, now, now)
    await executor(db).execute(
        "INSERT INTO uploads (id, repo_id, size, created_at, updated_at)"
        " VALUES (:id, :repo_id, 0, :now, :now)",
        {"id": upload.id, "repo_id": repo_id, "now": now},
    )
    return upload


async def get_upload(db: Queryable, upload_id: str, repo_id: str) -> Upload | None:
    """The upload when it exists and belongs to repository `repo_id`."""
    row = await executor(db).fetch_one(
        "SELECT id, repo_id, size, created_at, updated_at FROM uploads"
        " WHERE id = :id AND repo_id = :repo_id",
        {"id": upload_id, "repo_id": repo_id},
    )
    return None if row is None else _row(row)


async def advance_upload(db: Queryable, upload_id: str, old_size: int, new_size: int) -> bool:
    """Move the committed length from `old_size` to `new_size`; False if it moved meanwhile.

    Use inside ``MetadataDB.write()`` so the check and the update are one step.
    """
    q = executor(db)
    current = await q.fetch_val("SELECT size FROM uploads WHERE id = :id", {"id": upload_id})
    if current is None or int(current) != old_size:
        return False
    await q.execute(
        "UPDATE uploads SET size = :size, updated_at = :now WHERE id = :id",
        {"id": upload_id, "size": new_size, "now": time.time()},
    )
    return True


async def delete_upload(db: Queryable, upload_id: str) -> None:
    await executor(db).execute("DELETE FROM uploads WHERE id = :id", {"id": upload_id})


async def claim_upload(db: Queryable, upload_id: str) -> bool:
    """True when the upload still exists; locks its row on PostgreSQL. Use inside a write.

    The sweep removes abandoned uploads under the same row lock, so a finish
    and a sweep of one upload never both proceed.
    """
    query = select(uploads.c.id).where(uploads.c.id == upload_id).with_for_update()
    return await executor(db).fetch_val(query) is not None
