"""Repositories: one row per ``<namespace>/<path>``, created by its first push.

`owner_id` is recorded at creation and never changes; access checks compare
it with the token's subject on every request (see ``services.registry.access``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from services.registry.events.model import REPOSITORY_CREATED
from services.registry.events.recorder import EventRecorder, recorded_write
from services.registry.metadata.sql import Queryable, executor, keyset_page
from shared.database import MetadataDB

__all__ = ["Repository", "ensure_repository", "get_repository", "list_repositories"]


@dataclass(frozen=True, slots=True)
class Repository:
    id: str
    name: str
    owner_id: str
    created_at: float


def _row(row: Any) -> Repository:
    return Repository(
        id=str(row["id"]),
        name=str(row["name"]),
        owner_id=str(row["owner_id"]),
        created_at=float(row["created_at"]),
    )


async def get_repository(db: Queryable, name: str) -> Repository | None:
    row = await executor(db).fetch_one(
        "SELECT id, name, owner_id, created_at FROM repositories WHERE name = :name",
        {"name": name},
    )
    return None if row is None else _row(row)


async def ensure_repository(
    db: Queryable, name: str, owner_id: str, events: EventRecorder | None = None
) -> Repository:
    """The repository `name`, created with `owner_id` when it does not exist yet.

    Concurrent first pushes race on the UNIQUE name: ``ON CONFLICT DO NOTHING``
    (SQLite ≥ 3.24 and PostgreSQL) lets exactly one insert win and the others
    read the winner's row. The returned owner may differ from `owner_id` when
    someone else won; callers must compare. With `events` (and `db` a
    `MetadataDB`), the winner writes ``repository.created`` in its transaction.
    """
    new_id = "rep_" + secrets.token_hex(12)
    values = {"id": new_id, "name": name, "owner_id": owner_id, "created_at": time.time()}
    insert = (
        "INSERT INTO repositories (id, name, owner_id, created_at)"
        " VALUES (:id, :name, :owner_id, :created_at) ON CONFLICT (name) DO NOTHING"
    )
    if events is None or not isinstance(db, MetadataDB):
        q = executor(db)
        await q.execute(insert, values)
        repository = await get_repository(q, name)
    else:
        async with recorded_write(db, events) as conn:
            await conn.execute(insert, values)
            repository = await get_repository(conn, name)
            if repository is not None and repository.id == new_id:
                await events.record(conn, REPOSITORY_CREATED, new_id)
    if repository is None:  # pragma: no cover - the row was inserted or already there
        raise RuntimeError(f"repository {name!r} vanished while being created")
    return repository


async def list_repositories(
    db: Queryable, owner_id: str, last: str | None = None, n: int | None = None
) -> list[Repository]:
    """The owner's repositories in name order, after `last`, at most `n`."""
    sql = "SELECT id, name, owner_id, created_at FROM repositories WHERE owner_id = :owner_id"
    values: dict[str, Any] = {"owner_id": owner_id}
    rows = await executor(db).fetch_all(keyset_page(sql, values, "name", last, n), values)
    return [_row(r) for r in rows]
