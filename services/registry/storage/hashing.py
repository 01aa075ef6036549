"""Running digests of uploads, kept between requests.

A hash object cannot be serialized, so an upload's running hash lives in the
memory of the process that received its last chunk, keyed by (upload id,
committed length, algorithm). Any other process, or this one after a restart
or an eviction, recomputes it by streaming the stored part once.

Each entry carries the stored data's modification stamp at the time it was
cached; the upload manager uses it only while storage still shows that stamp
and length, so bytes changed behind this process's back (another replica
writing the same upload) are re-read rather than trusted.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator

__all__ = ["HashCache", "hash_stream"]


class HashCache:
    """A bounded LRU of running hashes; an entry is consumed when taken."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: OrderedDict[tuple[str, int, str], tuple[hashlib._Hash, float]] = (
            OrderedDict()
        )
        self._max = max_entries

    def take(
        self, upload_id: str, offset: int, algorithm: str
    ) -> tuple[hashlib._Hash, float] | None:
        """The hash of the first `offset` bytes and the data's stamp when it was cached."""
        return self._entries.pop((upload_id, offset, algorithm), None)

    def put(self, upload_id: str, offset: int, hasher: hashlib._Hash, stamp: float) -> None:
        self.drop(upload_id)
        self._entries[(upload_id, offset, hasher.name)] = (hasher, stamp)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        for key in [k for k in self._entries if k[0] == upload_id]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


async def hash_stream(chunks: AsyncIterator[bytes], algorithm: str) -> hashlib._Hash:
    hasher = hashlib.new(algorithm)
    async for chunk in chunks:
        hasher.update(chunk)
    return hasher
