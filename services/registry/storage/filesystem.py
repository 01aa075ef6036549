"""The filesystem driver (``file:///path``): the default backend.

Blocking file calls run in worker threads so the event loop keeps serving.
Atomic replacement is ``os.replace`` within one filesystem; durability is
``fsync`` of the file and of the directory whose entries changed. Temporary
files start with ``.`` and are never listed, and no logical path can name
them (see `check_path`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from anyio import to_thread

from services.registry.storage.base import (
    DEFAULT_CHUNK_SIZE,
    FileInfo,
    FileWriter,
    PathNotFound,
    StorageDriver,
    StorageError,
    check_path,
)
from shared.private_files import FOLDER_MODE, tighten

__all__ = ["FilesystemDriver"]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Syncs a file's data and size, leaving out metadata nothing reads back (times);
# where the platform lacks it, a full fsync.
_sync_data = getattr(os, "fdatasync", os.fsync)


class _FileWriter(FileWriter):
    def __init__(self, handle: BinaryIO, full: Path, size: int, created: bool) -> None:
        self._handle: BinaryIO | None = handle
        self._full = full
        self._size = size
        self._created = created

    @property
    def size(self) -> int:
        return self._size

    def _open(self) -> BinaryIO:
        if self._handle is None:
            raise StorageError(f"writer for {self._full.name} is closed")
        return self._handle

    async def write(self, data: bytes) -> None:
        handle = self._open()
        await to_thread.run_sync(handle.write, data)
        self._size += len(data)

    async def commit(self) -> None:
        handle = self._open()

        def flush() -> None:
            handle.flush()
            _sync_data(handle.fileno())
            handle.close()
            # The folder changes only when the file is new: then its entry
            # must reach the disk too. Each further chunk appended to an
            # upload syncs its data alone.
            if self._created:
                _fsync_dir(self._full.parent)

        self._handle = None
        await to_thread.run_sync(flush)

    async def cancel(self) -> None:
        await self.close()
        with contextlib.suppress(FileNotFoundError):
            await to_thread.run_sync(self._full.unlink)

    async def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await to_thread.run_sync(handle.close)


class FilesystemDriver(StorageDriver):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        # Blobs are private images: the folder is 0700 (files 0600 through the umask).
        self.root.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        tighten(self.root)

    @classmethod
    def from_url(cls, url: str) -> FilesystemDriver:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise ValueError(f"not a local file URL: {url!r}")
        return cls(Path(unquote(parsed.path)))

    def _full(self, path: str) -> Path:
        return self.root.joinpath(*check_path(path).split("/"))

    async def stat(self, path: str) -> FileInfo:
        full = self._full(path)
        try:
            st = await to_thread.run_sync(full.stat)
        except FileNotFoundError as exc:
            raise PathNotFound(path) from exc
        is_dir = full.is_dir()
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    async def read(
        self,
        path: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        full = self._full(path)

        def open_at() -> BinaryIO:
            handle = full.open("rb")
            handle.seek(offset)
            return handle

        try:
            handle = await to_thread.run_sync(open_at)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise PathNotFound(path) from exc
        remaining = length

        def next_read() -> asyncio.Task[bytes] | None:
            # The next chunk is read in a thread while the last one is sent.
            if remaining is not None and remaining <= 0:
                return None
            size = chunk_size if remaining is None else min(chunk_size, remaining)
            return asyncio.ensure_future(to_thread.run_sync(handle.read, size))

        reading = next_read()
        try:
            while reading is not None:
                data = await reading
                reading = None
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                reading = next_read()
                yield data
        finally:
            if reading is not None:
                with contextlib.suppress(BaseException):
                    await reading
            await to_thread.run_sync(handle.close)

    async def writer(self, path: str, offset: int = 0) -> FileWriter:
        full = self._full(path)

        def open_at() -> tuple[BinaryIO, bool]:
            full.parent.mkdir(parents=True, exist_ok=True)
            created = False
            try:
                handle: BinaryIO = full.open("r+b")
            except FileNotFoundError:
                if offset:
                    raise PathNotFound(path) from None
                handle = full.open("wb")
                created = True
            end = handle.seek(0, os.SEEK_END)
            if offset > end:
                handle.close()
                raise StorageError(f"cannot write {path} at {offset}: it holds {end} bytes")
            handle.truncate(offset)
            handle.seek(offset)
            return handle, created

        handle, created = await to_thread.run_sync(open_at)
        return _FileWriter(handle, full, offset, created)

    async def get_content(self, path: str) -> bytes:
        full = self._full(path)
        try:
            return await to_thread.run_sync(full.read_bytes)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise PathNotFound(path) from exc

    async def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)

        def put() -> None:
            full.parent.mkdir(parents=True, exist_ok=True)
            temp = full.parent / f".tmp-{secrets.token_hex(8)}"
            try:
                with temp.open("wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, full)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            _fsync_dir(full.parent)

        await to_thread.run_sync(put)

    async def list(self, path: str) -> list[str]:
        full = self._full(path)

        def names() -> list[str]:
            try:
                return sorted(p.name for p in full.iterdir() if not p.name.startswith("."))
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise PathNotFound(path) from exc

        return [f"{path}/{name}" for name in await to_thread.run_sync(names)]

    async def move(self, source: str, destination: str) -> None:
        src, dst = self._full(source), self._full(destination)

        def move() -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(src, dst)
            except FileNotFoundError as exc:
                raise PathNotFound(source) from exc
            _fsync_dir(dst.parent)

        await to_thread.run_sync(move)

    async def delete(self, path: str) -> None:
        full = self._full(path)

        def remove() -> None:
            if full.is_dir() and not full.is_symlink():
                shutil.rmtree(full)
                return
            try:
                full.unlink()
            except FileNotFoundError as exc:
                raise PathNotFound(path) from exc

        await to_thread.run_sync(remove)
