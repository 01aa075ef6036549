"""Blob uploads: receive chunks, keep them in storage, verify and publish the blob.

An upload is a row (repository, committed length) plus ``uploads/<id>/data``
in storage, so it survives a restart and any replica can continue it. Bodies
are streamed to storage through a bounded buffer, never held whole. The
running hash follows the data (see ``hashing``). Finishing verifies the
digest over everything received, then, in one write transaction holding
the digest's lock, records the blob, moves the data to its content address
(atomic; skipped when the content is already stored) and links it in the
repository: a link never points at missing or partial bytes, and the garbage
collector (which deletes a file only under the same lock, after re-checking
that no row needs it) can never remove the file this upload relied on.

One request at a time writes to an upload, whichever worker process or
replica serves it: every append, finish and cancel holds the upload's named
lock (``MetadataDB.locks``: a PostgreSQL advisory lock, or a byte-range lock
beside the SQLite file; both vanish with a dead process, so a crash never
leaves an upload stuck). A second request waits a few seconds for it, then
gets BLOB_UPLOAD_INVALID. The writer re-checks that it still holds the lock
before each write to storage and before committing, and the committed length
still moves only by compare-and-set: a writer that lost its lock fails
instead of corrupting the upload. The garbage collector skips uploads whose
lock is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from anyio import to_thread

from services.registry.errors import RegistryError
from services.registry.metadata.blobs import BlobRecord, link_blob, lock_digest
from services.registry.metadata.repositories import Repository
from services.registry.metadata.uploads import (
    Upload,
    advance_upload,
    claim_upload,
    create_upload,
    delete_upload,
    get_upload,
    lock_name,
)
from services.registry.storage.base import PathNotFound, StorageDriver
from services.registry.storage.hashing import HashCache, hash_stream
from services.registry.storage.paths import blob_path, upload_dir, upload_path
from shared.database import MetadataDB
from shared.locks import Held, LockBusy, LockLost
from shared.names import Digest

__all__ = ["BUFFER_SIZE", "ChunkOutOfOrder", "UploadManager"]

# Bytes gathered from the request before each write: large enough to keep
# thread hand-offs rare, small enough that memory stays flat per request.
BUFFER_SIZE = 1024 * 1024
# Chunks smaller than this are hashed on the event loop's thread.
INLINE_HASH = 64 * 1024
# The hash is updated in the same worker hop as the write.
STREAMING_ALGORITHM = "sha256"
# How long a request waits for another one writing the same upload.
LOCK_WAIT_SECONDS = 5.0


class ChunkOutOfOrder(Exception):
    """A chunk whose start is not the upload's committed length."""

    def __init__(self, upload: Upload) -> None:
        super().__init__(f"upload {upload.id} holds {upload.size} bytes")
        self.upload = upload


def _unknown(upload_id: str) -> RegistryError:
    return RegistryError(
        "BLOB_UPLOAD_UNKNOWN", "no such upload in this repository", {"upload": upload_id[:100]}
    )


@dataclass(slots=True)
class UploadManager:
    db: MetadataDB
    driver: StorageDriver
    hashes: HashCache = field(default_factory=HashCache)
    buffer_size: int = BUFFER_SIZE
    lock_wait: float = LOCK_WAIT_SECONDS

    @contextlib.asynccontextmanager
    async def _locked(self, upload_id: str) -> AsyncIterator[Held]:
        try:
            async with self.db.locks.hold(lock_name(upload_id), self.lock_wait) as held:
                yield held
        except LockBusy:
            raise _busy() from None
        except LockLost:
            raise _busy() from None

    async def start(self, repository: Repository) -> Upload:
        return await create_upload(self.db, repository.id)

    async def get(self, repository: Repository, upload_id: str) -> Upload:
        """The upload of `repository`; BLOB_UPLOAD_UNKNOWN for any other id."""
        try:
            upload_dir(upload_id)
        except ValueError:
            raise _unknown(upload_id) from None
        upload = await get_upload(self.db, upload_id, repository.id)
        if upload is None:
            raise _unknown(upload_id)
        return upload

    async def append(
        self,
        repository: Repository,
        upload_id: str,
        body: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
    ) -> Upload:
        """Append `body` (exactly `length` bytes when given) at `start` (when given)."""
        async with self._locked(upload_id) as held:
            upload = await self.get(repository, upload_id)
            if start is not None and start != upload.size:
                raise ChunkOutOfOrder(upload)
            size, hasher = await self._write(upload, body, STREAMING_ALGORITHM, length, held)
            held.check()
            await self._advance(upload, size)
            stored = await self.driver.stat(upload_path(upload.id))
            self.hashes.put(upload.id, size, hasher, stored.modified)
            return replace(upload, size=size)

    async def finish(
        self,
        repository: Repository,
        upload_id: str,
        body: AsyncIterator[bytes],
        digest: Digest,
        length: int | None = None,
    ) -> BlobRecord:
        """Append the last chunk, verify `digest`, store the blob once and link it.

        On a digest mismatch the upload is discarded and nothing is stored.
        """
        async with self._locked(upload_id) as held:
            upload = await self.get(repository, upload_id)
            size, hasher = await self._write(upload, body, digest.algorithm, length, held)
            if hasher.hexdigest() != digest.encoded:
                await self._discard(upload)
                raise RegistryError(
                    "DIGEST_INVALID",
                    "the uploaded content does not match the digest",
                    {"digest": str(digest)},
                )
            held.check()
            async with self.db.write() as conn:
                # The digest's lock makes "is the file there? move it in" and
                # the sweep's "no row, no link: delete the file" exclusive.
                await lock_digest(conn, str(digest))
                if not await claim_upload(conn, upload.id):
                    raise _unknown(upload.id)  # swept as abandoned meanwhile
                await link_blob(conn, repository.id, str(digest), size)
                await self._publish(upload, digest)
                await delete_upload(conn, upload.id)
            with contextlib.suppress(PathNotFound):
                await self.driver.delete(upload_dir(upload.id))
            self.hashes.drop(upload.id)
            return BlobRecord(str(digest), size, upload.created_at)

    async def cancel(self, repository: Repository, upload_id: str) -> None:
        async with self._locked(upload_id):
            await self._discard(await self.get(repository, upload_id))

    async def _discard(self, upload: Upload) -> None:
        await delete_upload(self.db, upload.id)
        with contextlib.suppress(PathNotFound):
            await self.driver.delete(upload_dir(upload.id))
        self.hashes.drop(upload.id)

    async def _advance(self, upload: Upload, size: int) -> None:
        async with self.db.write() as conn:
            moved = await advance_upload(conn, upload.id, upload.size, size)
        if not moved:
            raise RegistryError(
                "BLOB_UPLOAD_INVALID",
                "the upload was changed by another request; check its status and retry",
            )

    async def _running_hash(self, upload: Upload, algorithm: str) -> hashlib._Hash:
        cached = self.hashes.take(upload.id, upload.size, algorithm)
        if cached is not None:
            hasher, stamp = cached
            try:
                stored = await self.driver.stat(upload_path(upload.id))
            except PathNotFound:
                stored = None
            if stored is not None and (stored.size, stored.modified) == (upload.size, stamp):
                return hasher
        if upload.size == 0:
            return hashlib.new(algorithm)
        try:
            return await hash_stream(
                self.driver.read(upload_path(upload.id), 0, upload.size), algorithm
            )
        except PathNotFound:
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", "the upload's data is gone; start a new upload"
            ) from None

    async def _write(
        self,
        upload: Upload,
        body: AsyncIterator[bytes],
        algorithm: str,
        length: int | None,
        held: Held,
    ) -> tuple[int, hashlib._Hash]:
        """Stream `body` after the committed bytes; return the new length and hash."""
        hasher = await self._running_hash(upload, algorithm)
        try:
            writer = await self.driver.writer(upload_path(upload.id), upload.size)
        except PathNotFound:
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", "the upload's data is gone; start a new upload"
            ) from None

        def consume(data: bytes) -> None:
            hasher.update(data)

        async def store(data: bytes) -> None:
            held.check()
            if len(data) < INLINE_HASH:
                consume(data)  # a few microseconds: not worth a thread
                await writer.write(data)
            else:
                # The bytes go to storage and through the hash at once, in two
                # threads, while the next chunk is being received.
                await asyncio.gather(writer.write(data), to_thread.run_sync(consume, data))

        received = 0
        buffer = bytearray()
        # At most one chunk in flight: chunks are written and hashed in order.
        pending: asyncio.Task[None] | None = None
        try:
            async for chunk in body:
                received += len(chunk)
                if length is not None and received > length:
                    raise _size_invalid(length, received)
                buffer += chunk
                if len(buffer) >= self.buffer_size:
                    data = bytes(buffer)
                    buffer.clear()
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(store(data))
            if length is not None and received != length:
                raise _size_invalid(length, received)
            if pending is not None:
                await pending
                pending = None
            if buffer:
                await store(bytes(buffer))
            await writer.commit()
        except BaseException:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            # Bytes past the committed length are dropped by the next writer.
            await writer.close()
            raise
        return upload.size + received, hasher

    async def _publish(self, upload: Upload, digest: Digest) -> None:
        """Put the upload's data at the blob's address unless that content is already there.

        Runs inside the write transaction that records the blob, holding the
        digest's lock (see ``metadata.blobs.lock_digest``): a sweep cannot
        delete an existing file between this check and the commit.
        """
        destination = blob_path(digest)
        try:
            await self.driver.stat(destination)
        except PathNotFound:
            try:
                await self.driver.move(upload_path(upload.id), destination)
            except PathNotFound:
                raise RegistryError(
                    "BLOB_UPLOAD_INVALID", "the upload's data is gone; start a new upload"
                ) from None


def _busy() -> RegistryError:
    return RegistryError(
        "BLOB_UPLOAD_INVALID",
        "another request is writing to this upload; check its status and retry",
    )


def _size_invalid(expected: int, received: int) -> RegistryError:
    return RegistryError(
        "SIZE_INVALID",
        f"the body holds {'more than ' if received > expected else ''}{received} bytes,"
        f" {expected} were announced",
    )
