"""Admin commands that read a database find an existing one; they never create an empty one.

Opening a SQLite URL creates the file, so ``ecloud-auth users list`` or
``ecloud-registry gc`` run from another folder used to create an empty
``./data`` and report nothing. `open_existing` refuses instead, naming the
path it looked at and the settings that choose it. Commands that are meant
to create the database (``serve``, ``migrate``, ``users create``) do not use
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shared.database import MetadataDB

__all__ = ["DatabaseMissing", "DatabasePlace", "display_url", "open_existing", "sqlite_file"]


class DatabaseMissing(Exception):
    """The database a command needs is not there (or has no tables yet)."""


@dataclass(frozen=True, slots=True)
class DatabasePlace:
    """Where a service's database is, and how an operator points a command at it."""

    url: str
    data_dir: Path
    url_setting: str  # e.g. ECLOUD_AUTH_DATABASE_URL
    migrate_command: str  # e.g. "ecloud-auth migrate"

    def hint(self) -> str:
        return (
            f"Run it where the services keep their data, or point it there:"
            f" ECLOUD_DATA_DIR=/path/to/data (now {self.data_dir};"
            f" default ./data, relative to the current folder) or {self.url_setting}."
        )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def display_url(url: str) -> str:
    """`url` with any password replaced, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def open_existing(place: DatabasePlace) -> MetadataDB:
    """Connect to the database at `place`; `DatabaseMissing` unless it exists with a schema."""
    path = sqlite_file(place.url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(
            f"no database at {path}: this command reads an existing database and does not"
            f" create one. {place.hint()}"
        )
    db = MetadataDB(place.url)
    try:
        await db.connect()
    except Exception as exc:
        raise DatabaseMissing(
            f"cannot open the database {display_url(place.url)}: {exc}. {place.hint()}"
        ) from exc
    try:
        version = await db.schema_version()
    except Exception:
        version = 0
    if version == 0:
        await db.disconnect()
        where = path if path is not None else display_url(place.url)
        raise DatabaseMissing(
            f"the database at {where} has no tables yet: start the service or run"
            f" `{place.migrate_command}` first. {place.hint()}"
        )
    return db
