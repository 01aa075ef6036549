"""Repository names for the catalog: one owner's, optionally narrowed to a set of names."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from services.registry.metadata.tables import repositories
from shared.database import MetadataDB, bytewise

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
    r = repositories
    name = bytewise(r.c.name)
    query = select(r.c.name).where(r.c.owner_id == owner_id)
    if last:
        query = query.where(name > last)
    if only is not None:
        names = sorted(set(only))
        if not names:
            return []
        query = query.where(r.c.name.in_(names[:1000]))
    rows = await db.fetch_all(query.order_by(name).limit(limit))
    return [str(row["name"]) for row in rows]
