"""Repository names for the catalog: one owner's, optionally narrowed to a set of names."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from shared.database import MetadataDB

__all__ = ["list_repository_names"]


async def list_repository_names(
    db: MetadataDB,
    owner_id: str,
    last: str | None,
    limit: int,
    only: Collection[str] | None = None,
) -> list[str]:
    """The owner's repository names after `last` in bytewise order, at most `limit`.

    `only`, when given, restricts the answer to those names (a service
    account's token lists what its access claim names, nothing more).
    """
    # The repositories table keeps the database's collation; compare bytewise
    # explicitly so paging agrees with SQLite whatever the server's locale.
    column = 'name COLLATE "C"' if db.dialect == "postgresql" else "name"
    sql = "SELECT name FROM repositories WHERE owner_id = :owner"
    values: dict[str, Any] = {"owner": owner_id, "limit": limit}
    if last:
        sql += f" AND {column} > :last"
        values["last"] = last
    if only is not None:
        names = sorted(set(only))
        if not names:
            return []
        params = {f"o{i}": n for i, n in enumerate(names[:1000])}
        sql += " AND name IN (" + ", ".join(f":{p}" for p in params) + ")"
        values.update(params)
    sql += f" ORDER BY {column} LIMIT :limit"
    rows = await db.database.fetch_all(sql, values)
    return [str(r["name"]) for r in rows]
