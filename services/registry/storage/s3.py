"""The S3-compatible driver (``s3://bucket/prefix``): AWS S3, MinIO, Ceph RGW, R2.

Layout under the bucket's prefix::

    <prefix>/
    ├── <path>                      a whole object: put_content, or the target of a move
    └── <path>~seg/                 a file written through `writer`, as segments
        ├── 00000000000000000000    bytes [0, n0) (the start offset, 20 digits)
        ├── 0000000000000000<n0>    bytes [n0, n1)
        └── ...

S3 objects cannot be appended to, so a writer stores each flush as a new
segment object named by its start offset: appending at the committed offset
is one PUT, and dropping an unacknowledged tail is deleting the segments that
start at or past the offset (and rewriting one that straddles it). ``~`` is
not allowed in a logical path component (see `check_path`), so no logical
path names a segment folder; `list` maps ``<name>~seg/`` back to ``<name>``.

The file is the run of segments that is contiguous from 0; a segment after a
gap is the leftover of an interrupted truncation and is ignored (the next
writer deletes it). When a whole object and segments share a path the whole
object wins; a writer at a positive offset converts a whole object into
segment 0 first.

Atomicity: readers see a blob only at its content address, and `move` writes
that address as one object, by CopyObject (one segment or one object), one
PutObject (small content gathered in a bounded buffer) or one
CompleteMultipartUpload (UploadPartCopy for segments of 5 MiB or more, other
bytes streamed through a buffer of one part). S3 makes each of these visible
all at once, so a reader sees the old destination or the complete new one,
never a mix. The source is deleted only after the destination is complete; a
crash in between leaves a stray upload for garbage collection, not a partial
blob. Segments live in the bucket, so any replica can continue an upload.
Memory per operation is bounded by one part (`part_size`, 8 MiB by default).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

from services.registry.settings import S3Settings
from services.registry.storage.base import (
    DEFAULT_CHUNK_SIZE,
    FileInfo,
    FileWriter,
    PathNotFound,
    StorageDriver,
    StorageError,
    check_path,
)
from services.registry.storage.s3client import ObjectInfo, S3Client, S3Config
from services.registry.storage.sigv4 import Credentials

__all__ = ["MIN_PART_SIZE", "PART_SIZE", "S3Driver"]

PART_SIZE = 8 * 1024 * 1024
# S3's limits: every multipart part but the last is at least 5 MiB; one
# CopyObject or UploadPartCopy copies at most 5 GiB.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_COPY_SIZE = 5 * 1024**3

SEGMENTS = "~seg/"
_OFFSET_DIGITS = 20
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class _Segment:
    key: str
    start: int
    size: int
    modified: float

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class _Range:
    """Bytes ``[start, end)`` of the object `key`."""

    key: str
    start: int
    end: int
    whole: bool = False  # the range is the entire object, so it can be copied as is

    @property
    def size(self) -> int:
        return self.end - self.start


# Inside `S3Driver`, whose `list` method shadows the builtin.
_Keys = list[str]
_Ranges = list[_Range]


@dataclass(slots=True)
class _Pieces:
    """Bytes gathered for one part, kept as the pieces they arrived in."""

    pieces: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, piece: bytes) -> None:
        self.pieces.append(piece)
        self.size += len(piece)

    def extend(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.add(piece)


def _segment_key(key: str, start: int) -> str:
    return f"{key}{SEGMENTS}{start:0{_OFFSET_DIGITS}d}"


class _S3Writer(FileWriter):
    def __init__(self, driver: S3Driver, key: str, offset: int) -> None:
        self._driver = driver
        self._key = key
        self._stored = offset
        self._pending = _Pieces()
        self._exists = offset > 0
        self._closed = False

    @property
    def size(self) -> int:
        return self._stored + self._pending.size

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"writer for {self._key} is closed")

    async def _flush(self) -> None:
        pending, self._pending = self._pending, _Pieces()
        await self._driver.client.put_object(_segment_key(self._key, self._stored), pending.pieces)
        self._stored += pending.size
        self._exists = True

    async def write(self, data: bytes) -> None:
        self._check_open()
        self._pending.add(data)
        # A segment is a part or a little more (one write), never split: no copies.
        if self._pending.size >= self._driver.part_size:
            await self._flush()

    async def commit(self) -> None:
        self._check_open()
        self._closed = True
        # An empty file still needs one (empty) segment to exist.
        if self._pending.size or not self._exists:
            await self._flush()

    async def cancel(self) -> None:
        await self.close()
        try:
            await self._driver._remove(self._key)
        except PathNotFound:
            pass

    async def close(self) -> None:
        self._closed = True
        self._pending = _Pieces()


class S3Driver(StorageDriver):
    def __init__(
        self,
        client: S3Client,
        prefix: str = "",
        part_size: int = PART_SIZE,
        redirect_ttl: int | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part size must be at least {MIN_PART_SIZE} bytes")
        self.client = client
        self.redirect_ttl = redirect_ttl
        self.prefix = check_path(prefix) if prefix else ""
        self.part_size = part_size
        self._root = f"{self.prefix}/" if self.prefix else ""

    @classmethod
    def from_url(cls, url: str, settings: S3Settings) -> S3Driver:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or _BUCKET.fullmatch(parsed.netloc) is None:
            raise ValueError(f"not an S3 URL with a valid bucket: {url!r}")
        if parsed.query or parsed.fragment or parsed.params:
            raise ValueError("an S3 storage URL takes no query; use the ECLOUD_S3_* settings")
        prefix = parsed.path.strip("/")
        try:
            prefix = check_path(prefix) if prefix else ""
        except StorageError as exc:
            raise ValueError(f"invalid prefix in S3 storage URL: {prefix!r}") from exc
        if not settings.access_key_id or not settings.secret_access_key:
            raise ValueError(
                "S3 storage needs credentials: ECLOUD_S3_ACCESS_KEY_ID and"
                " ECLOUD_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        config = S3Config(
            endpoint=settings.endpoint or f"https://s3.{settings.region}.amazonaws.com",
            region=settings.region,
            bucket=parsed.netloc,
            credentials=Credentials(
                settings.access_key_id, settings.secret_access_key, settings.session_token
            ),
            addressing=settings.addressing,
            retry_attempts=settings.retry_attempts,
            retry_timeout=settings.retry_timeout,
        )
        redirect_ttl = settings.redirect_ttl if settings.redirect else None
        return cls(S3Client(config), prefix, redirect_ttl=redirect_ttl)

    def download_url(self, path: str) -> str | None:
        """A presigned GET URL for `path` when redirects are on (``ECLOUD_S3_REDIRECT``).

        Only for a path stored as one object (blobs always are: they appear by `move`).
        """
        if self.redirect_ttl is None:
            return None
        return self.client.presigned_url(self._key(path), self.redirect_ttl)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _key(self, path: str) -> str:
        return self._root + check_path(path)

    async def _segments(self, key: str) -> tuple[list[_Segment], list[_Segment]]:
        """The file's contiguous segments from 0, and the stray ones after a gap."""
        page = await self.client.list_all(key + SEGMENTS)
        found = []
        for obj in page.objects:
            name = obj.key[len(key) + len(SEGMENTS) :]
            if len(name) == _OFFSET_DIGITS and name.isdigit():
                found.append(_Segment(obj.key, int(name), obj.size, obj.modified))
        found.sort(key=lambda s: s.start)
        contiguous: list[_Segment] = []
        for i, segment in enumerate(found):
            if segment.start != (contiguous[-1].end if contiguous else 0):
                return contiguous, found[i:]
            contiguous.append(segment)
        return contiguous, []

    async def _locate(self, path: str) -> tuple[ObjectInfo | None, list[_Segment]]:
        """The whole object at `path`, else its segments; PathNotFound when neither."""
        key = self._key(path)
        whole = await self.client.head_object(key)
        if whole is not None:
            return whole, []
        segments, _ = await self._segments(key)
        if not segments:
            raise PathNotFound(path)
        return None, segments

    async def stat(self, path: str) -> FileInfo:
        key = self._key(path)
        try:
            whole, segments = await self._locate(path)
        except PathNotFound:
            page = await self.client.list_objects(key + "/", max_keys=1)
            if page.objects or page.prefixes:
                return FileInfo(path, 0, 0.0, True)
            raise
        if whole is not None:
            return FileInfo(path, whole.size, whole.modified, False)
        size = sum(s.size for s in segments)
        return FileInfo(path, size, max(s.modified for s in segments), False)

    def _ranges(self, key: str, whole: ObjectInfo | None, segments: list[_Segment]) -> list[_Range]:
        if whole is not None:
            return [_Range(key, 0, whole.size, whole=True)]
        return [_Range(s.key, 0, s.size, whole=True) for s in segments]

    async def read(
        self,
        path: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        key = self._key(path)
        whole, segments = await self._locate(path)
        end = None if length is None else offset + length
        position = 0
        expected = 0
        received = 0
        buffer = bytearray()
        for piece in self._ranges(key, whole, segments):
            # Map the logical window [offset, end) onto this piece.
            piece_end = position + piece.size
            lo = max(offset, position) - position
            hi = (piece_end if end is None else min(end, piece_end)) - position
            position = piece_end
            if hi <= lo:
                continue
            expected += hi - lo
            try:
                async for data in self.client.iter_range(piece.key, lo, hi):
                    received += len(data)
                    buffer += data
                    while len(buffer) >= chunk_size:
                        yield bytes(buffer[:chunk_size])
                        del buffer[:chunk_size]
            except PathNotFound:
                raise PathNotFound(path) from None
        if buffer:
            yield bytes(buffer)
        if received != expected:
            raise StorageError(f"storage returned {received} bytes of {path}, not {expected}")

    async def writer(self, path: str, offset: int = 0) -> FileWriter:
        key = self._key(path)
        whole = await self.client.head_object(key)
        if whole is not None:
            if offset > whole.size:
                raise StorageError(f"cannot write {path} at {offset}: it holds {whole.size} bytes")
            await self._delete_keys(await self._segment_keys(key))
            if offset > 0:
                await self._compose(_segment_key(key, 0), [_Range(key, 0, whole.size, whole=True)])
            await self.client.delete_object(key)
        segments, stray = await self._segments(key)
        size = sum(s.size for s in segments)
        if offset > 0 and not segments:
            raise PathNotFound(path)
        if offset > size:
            raise StorageError(f"cannot write {path} at {offset}: it holds {size} bytes")
        # Highest first, so an interruption leaves a prefix of the old content.
        dropped = sorted((s for s in segments + stray if s.start >= offset), key=lambda s: -s.start)
        for segment in dropped:
            await self.client.delete_object(segment.key)
        for segment in segments:
            if segment.start < offset < segment.end:
                await self._compose(segment.key, [_Range(segment.key, 0, offset - segment.start)])
        return _S3Writer(self, key, offset)

    async def get_content(self, path: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(path)])

    async def put_content(self, path: str, data: bytes) -> None:
        await self.client.put_object(self._key(path), data)

    async def list(self, path: str) -> list[str]:
        prefix = self._key(path) + "/"
        page = await self.client.list_all(prefix, "/")
        names = {obj.key[len(prefix) :] for obj in page.objects}
        for folder in page.prefixes:
            name = folder[len(prefix) :]
            names.add(name[: -len(SEGMENTS)] if name.endswith(SEGMENTS) else name[:-1])
        if not page.objects and not page.prefixes:
            raise PathNotFound(path)
        return [f"{path}/{name}" for name in sorted(names) if _NAME.fullmatch(name)]

    async def move(self, source: str, destination: str) -> None:
        src, dst = self._key(source), self._key(destination)
        whole, segments = await self._locate(source)
        await self._compose(dst, self._ranges(src, whole, segments))
        if whole is not None:
            await self.client.delete_object(src)
        await self._delete_keys(await self._segment_keys(src))

    async def delete(self, path: str) -> None:
        await self._remove(self._key(path), path)

    async def _remove(self, key: str, path: str | None = None) -> None:
        """Delete the object, the segments and the tree at `key`."""
        whole = await self.client.head_object(key)
        if whole is not None:
            await self.client.delete_object(key)
        keys = await self._segment_keys(key)
        keys += [obj.key for obj in (await self.client.list_all(key + "/")).objects]
        if whole is None and not keys:
            raise PathNotFound(path or key)
        await self._delete_keys(keys)

    async def _segment_keys(self, key: str) -> _Keys:
        return [obj.key for obj in (await self.client.list_all(key + SEGMENTS)).objects]

    async def _delete_keys(self, keys: _Keys) -> None:
        if keys:
            await self.client.delete_objects(keys)

    async def _compose(self, destination: str, ranges: _Ranges) -> None:
        """Write the concatenation of `ranges` as the one object `destination`."""
        total = sum(r.size for r in ranges)
        if len(ranges) == 1 and ranges[0].whole and 0 < total <= MAX_COPY_SIZE:
            await self.client.copy_object(ranges[0].key, destination)
            return
        if total <= self.part_size:
            small = _Pieces()
            for r in ranges:
                if r.size:
                    small.extend(await self.client.get_range(r.key, r.start, r.end))
            await self.client.put_object(destination, small.pieces)
            return
        await self._compose_multipart(destination, ranges)

    async def _compose_multipart(self, destination: str, ranges: _Ranges) -> None:
        upload_id = await self.client.create_multipart(destination)
        etags: _Keys = []
        pending = _Pieces()
        try:
            for r in ranges:
                position = r.start
                while position < r.end:
                    left = r.end - position
                    if not pending.size and left >= MIN_PART_SIZE:
                        # Large enough to be a part of its own: copied server-side.
                        n = min(left, MAX_COPY_SIZE)
                        etag = await self.client.upload_part_copy(
                            destination, upload_id, len(etags) + 1, r.key, position, position + n
                        )
                        etags.append(etag)
                    else:
                        n = min(left, self.part_size - pending.size)
                        pending.extend(await self.client.get_range(r.key, position, position + n))
                        if pending.size >= self.part_size:
                            etags.append(
                                await self._upload_part(destination, upload_id, etags, pending)
                            )
                            pending = _Pieces()
                    position += n
            if pending.size or not etags:
                etags.append(await self._upload_part(destination, upload_id, etags, pending))
            await self.client.complete_multipart(destination, upload_id, etags)
        except BaseException:
            try:
                await self.client.abort_multipart(destination, upload_id)
            except StorageError:
                pass  # the bucket's lifecycle rule or GC removes abandoned uploads
            raise

    async def _upload_part(
        self, destination: str, upload_id: str, etags: _Keys, pending: _Pieces
    ) -> str:
        return await self.client.upload_part(destination, upload_id, len(etags) + 1, pending.pieces)
