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
]
