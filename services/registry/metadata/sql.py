"""What the metadata query functions accept as a place to run SQL.

Callers pass the service's `MetadataDB`, its `databases.Database`, or a
connection from ``MetadataDB.write()`` (to take part in its transaction).
"""

from __future__ import annotations

from databases import Database
from databases.core import Connection

from shared.database import MetadataDB

__all__ = ["Queryable", "executor"]

Queryable = MetadataDB | Database | Connection


def executor(target: Queryable) -> Database | Connection:
    """The object whose ``execute``/``fetch_*`` methods run the statement."""
    if isinstance(target, MetadataDB):
        return target.database
    return target
