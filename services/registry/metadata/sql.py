"""What the metadata query functions accept as a place to run SQL, and paging helpers.

Callers pass the service's `MetadataDB` or a connection from
``MetadataDB.write()`` (to take part in its transaction); both have the same
``execute``/``fetch_*`` methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from shared.database import DBConnection, MetadataDB

__all__ = ["MAX_BOUND", "Queryable", "chunks", "executor", "keyset_page"]

Queryable = MetadataDB | DBConnection

# Values bound in one expanding IN list: well under SQLite's and PostgreSQL's
# limit of bound parameters per statement (32766 / 32767), whatever the input.
MAX_BOUND = 1000

T = TypeVar("T")


def executor(target: Queryable) -> Queryable:
    """The object whose ``execute``/``fetch_*`` methods run the statement."""
    return target


def chunks(values: Sequence[T], size: int = MAX_BOUND) -> Iterator[Sequence[T]]:
    """`values` in slices of at most `size`, for inputs of unbounded length."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


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
