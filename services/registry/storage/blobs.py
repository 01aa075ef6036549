"""Blobs as a repository sees them: stat, read, link, unlink, mount.

Visibility is the repository's link (metadata); the bytes are shared in
storage under their digest (see ``paths``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from services.registry.metadata.blobs import BlobRecord, get_linked_blob, link_blob, unlink_blob
from services.registry.metadata.gc_queue import DEFAULT_GRACE_SECONDS
from services.registry.metadata.repositories import Repository
from services.registry.storage.base import StorageDriver
from services.registry.storage.paths import blob_path
from shared.database import MetadataDB
from shared.names import Digest

__all__ = ["BlobStore"]


@dataclass(slots=True)
class BlobStore:
    db: MetadataDB
    driver: StorageDriver
    # Seconds an unlinked digest is left alone before the sweep looks at it.
    review_delay: float = DEFAULT_GRACE_SECONDS

    async def stat(self, repository: Repository, digest: Digest) -> BlobRecord | None:
        """The blob when `repository` links it; a blob of another repository is None."""
        return await get_linked_blob(self.db, repository.id, str(digest))

    def read(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        return self.driver.read(blob_path(digest), offset, length)

    async def unlink(self, repository: Repository, digest: Digest) -> bool:
        async with self.db.write() as conn:
            return await unlink_blob(conn, repository.id, str(digest), self.review_delay)

    async def mount(
        self, target: Repository, source: Repository, digest: Digest
    ) -> BlobRecord | None:
        """Link into `target` a blob that `source` links; None when it does not.

        The caller has already checked that it may read `source`. The source
        link is read share-locked in the transaction that creates the new
        one, so a sweep cannot remove the blob in between: either the mount
        sees the link and the blob survives, or it sees none and the client
        falls back to a regular upload (202).
        """
        async with self.db.write() as conn:
            blob = await get_linked_blob(conn, source.id, str(digest), share_lock=True)
            if blob is None:
                return None
            await link_blob(conn, target.id, blob.digest, blob.size)
        return blob
