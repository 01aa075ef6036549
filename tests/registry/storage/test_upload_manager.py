"""The upload manager in-process, on a real SQLite file and the filesystem driver."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.registry.errors import RegistryError
from services.registry.metadata.blobs import get_linked_blob
from services.registry.metadata.migrations import MIGRATIONS
from services.registry.metadata.repositories import ensure_repository
from services.registry.storage.filesystem import FilesystemDriver
from services.registry.storage.paths import blob_path, upload_path
from services.registry.storage.uploads import ChunkOutOfOrder, UploadManager
from shared.database import MetadataDB, sqlite_url
from shared.names import Digest


async def body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def digest_of(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


async def _manager(tmp_path: Path) -> tuple[MetadataDB, FilesystemDriver, UploadManager]:
    db = MetadataDB(sqlite_url(tmp_path / "registry.db"))
    await db.connect()
    await db.migrate(MIGRATIONS, "test")
    driver = FilesystemDriver(tmp_path / "storage")
    return db, driver, UploadManager(db, driver, buffer_size=1000)


def test_cached_hash_is_not_trusted_after_the_data_changed(tmp_path: Path) -> None:
    async def go() -> None:
        db, driver, manager = await _manager(tmp_path)
        repo = await ensure_repository(db, "alice/app", "usr_a")
        upload = await manager.start(repo)
        await manager.append(repo, upload.id, body(b"aaaa"))
        # Another replica rewrote the same bytes range behind this process's back.
        full = driver.root / upload_path(upload.id)
        await asyncio.sleep(0.01)
        full.write_bytes(b"bbbb")
        with pytest.raises(RegistryError) as err:
            await manager.finish(repo, upload.id, body(b"!"), digest_of(b"aaaa!"))
        assert err.value.code == "DIGEST_INVALID"
        # Nothing was published under the digest the stale hash would have claimed.
        assert not (driver.root / blob_path(digest_of(b"aaaa!"))).exists()
        await db.disconnect()

    asyncio.run(go())


def test_buffered_writes_and_rehash_after_cache_loss(tmp_path: Path) -> None:
    async def go() -> None:
        db, driver, manager = await _manager(tmp_path)
        repo = await ensure_repository(db, "alice/app", "usr_a")
        data = os.urandom(10_000)
        upload = await manager.start(repo)
        upload = await manager.append(repo, upload.id, body(data[:2500], data[2500:4000]))
        assert upload.size == 4000
        with pytest.raises(ChunkOutOfOrder):
            await manager.append(repo, upload.id, body(b"x"), start=3000)
        manager.hashes.drop(upload.id)  # as after a restart
        blob = await manager.finish(repo, upload.id, body(data[4000:]), digest_of(data))
        assert blob.size == len(data)
        assert (driver.root / blob_path(digest_of(data))).read_bytes() == data
        assert await get_linked_blob(db, repo.id, str(digest_of(data))) is not None
        assert await driver.list("uploads") == []
        await db.disconnect()

    asyncio.run(go())


def test_size_mismatch_keeps_the_committed_length(tmp_path: Path) -> None:
    async def go() -> None:
        db, _, manager = await _manager(tmp_path)
        repo = await ensure_repository(db, "alice/app", "usr_a")
        upload = await manager.start(repo)
        await manager.append(repo, upload.id, body(b"12345"))
        for parts, length in (((b"abc",), 5), ((b"abcdef",), 4)):
            with pytest.raises(RegistryError) as err:
                await manager.append(repo, upload.id, body(*parts), length=length)
            assert err.value.code == "SIZE_INVALID"
        assert (await manager.get(repo, upload.id)).size == 5
        blob = await manager.finish(repo, upload.id, body(b"6"), digest_of(b"123456"))
        assert blob.size == 6
        await db.disconnect()

    asyncio.run(go())
