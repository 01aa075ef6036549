"""What the metadata query functions accept as a place to run SQL.

Callers pass the service's `MetadataDB`, its `databases.Database`, or a
connection from ``MetadataDB.write()`` (to take part in its transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from databases import Database
from databases.core import Connection

from shared.database import MetadataDB

__all__ = ["Queryable", "executor", "in_list", "keyset_page"]

Queryable = MetadataDB | Database | Connection


def executor(target: Queryable) -> Database | Connection:
    """The object whose ``execute``/``fetch_*`` methods run the statement."""
    if isinstance(target, MetadataDB):
        return target.database
    return target


def in_list(values: Sequence[str], prefix: str = "v") -> tuple[str, dict[str, str]]:
    """Placeholders ``:v0, :v1, …`` for an ``IN (…)`` list, and their bound values.

    Values are always bound, never pasted into the SQL.
    """
    names = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{n}" for n in names), names


def keyset_page(
    sql: str, values: dict[str, Any], column: str, last: str | None, limit: int | None
) -> str:
    """`sql` (ending in a WHERE clause) narrowed to rows after `last` by `column`, in
    `column` order, at most `limit`: the ``n``/``last`` paging of tags and catalog."""
    if last:
        sql += f" AND {column} > :last"
        values["last"] = last
    sql += f" ORDER BY {column}"
    if limit is not None:
        sql += " LIMIT :limit"
        values["limit"] = limit
    return sql
