"""The storage driver interface: the few operations the registry needs from a backend.

Paths are logical, ``/``-separated and relative (``blobs/sha256/ab/<hex>/data``);
a driver maps them onto its medium. The interface is deliberately narrow, in
the spirit of distribution's storagedriver: a reader at an offset, a writer
that is committed or cancelled, stat, list, move and delete, plus whole-object
get/put for small content. Every backend must pass the one shared test suite
in ``tests/registry/storage/test_driver_suite.py``.

Guarantees every driver gives:
- `move` is atomic: the destination holds either nothing (or its old content)
  or the complete source, never a mix. Blobs become visible only through a
  move, so a crash never exposes a partial blob.
- `put_content` is atomic in the same way.
- A committed writer's bytes survive a crash (fsync or the backend's
  equivalent).

Exceptions::

    StorageError            anything the backend could not do
    ├── PathNotFound        the path does not exist
    ├── InvalidPath         the path breaks the grammar (empty component, "..", ...)
    └── StorageUnavailable  the backend cannot be reached or refuses us (the registry
                            answers 503 UNAVAILABLE; retrying later may succeed)
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FileInfo",
    "FileWriter",
    "InvalidPath",
    "PathNotFound",
    "StorageDriver",
    "StorageError",
    "StorageUnavailable",
    "check_path",
]

DEFAULT_CHUNK_SIZE = 1024 * 1024

_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class StorageError(Exception):
    """A storage operation failed."""


class PathNotFound(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"no such path in storage: {path}")
        self.path = path


class InvalidPath(StorageError):
    pass


class StorageUnavailable(StorageError):
    """The backend is unreachable, refuses the credentials, or failed on its side."""


def check_path(path: str) -> str:
    """`path` when every component is a plain name (no ``..``, no empty parts)."""
    parts = path.split("/")
    if not path or any(_COMPONENT.fullmatch(p) is None for p in parts):
        raise InvalidPath(f"invalid storage path {path[:200]!r}")
    return path


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    modified: float
    is_dir: bool


class FileWriter(ABC):
    """Bytes appended to one path; `commit` makes them durable, `cancel` removes them."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Bytes at the path so far: the starting offset plus everything written."""

    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Make everything written durable; the writer is closed afterwards."""

    @abstractmethod
    async def cancel(self) -> None:
        """Discard the path's content; the writer is closed afterwards."""

    @abstractmethod
    async def close(self) -> None:
        """Stop writing without durability guarantees for the unflushed tail."""


class StorageDriver(ABC):
    """One storage backend. All methods may raise `StorageError`."""

    @abstractmethod
    async def stat(self, path: str) -> FileInfo: ...

    @abstractmethod
    def read(
        self,
        path: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        """Stream `length` bytes (all, when None) of `path` from `offset`.

        `PathNotFound` is raised when iteration starts.
        """

    @abstractmethod
    async def writer(self, path: str, offset: int = 0) -> FileWriter:
        """A writer appending at `offset` of `path` (created when 0).

        Anything beyond `offset` is dropped first: it is the tail of a write
        that was never acknowledged. An offset beyond the end is an error.
        """

    @abstractmethod
    async def get_content(self, path: str) -> bytes: ...

    @abstractmethod
    async def put_content(self, path: str, data: bytes) -> None: ...

    @abstractmethod
    async def list(self, path: str) -> list[str]:
        """The direct children of the directory `path`, as full paths, sorted."""

    @abstractmethod
    async def move(self, source: str, destination: str) -> None:
        """Atomically replace `destination` with `source`."""

    @abstractmethod
    async def delete(self, path: str) -> None:
        """Remove the file or the whole tree at `path`."""

    def download_url(self, path: str) -> str | None:
        """A short-lived URL clients may fetch `path` from directly, or None (the
        registry streams the bytes itself). Only the S3 driver gives one, on request."""
        return None
