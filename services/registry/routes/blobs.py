"""``/v2/<name>/blobs/<digest>``: HEAD, GET (with ``Range``) and DELETE.

A blob answers only in a repository that links it; the same digest in
another repository (another user's included) is BLOB_UNKNOWN. GET streams
from storage (or, with ``ECLOUD_S3_REDIRECT``, answers 307 to a presigned S3 URL;
HEAD always answers here); a single byte range (``byteranges``) is honoured the way
Starlette's `FileResponse` does it (206 + ``Content-Range``; 416 +
``Content-Range: bytes */<size>`` when it starts past the end); several
ranges, or one that cannot be parsed, get the whole blob, as RFC 9110 allows.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from services.registry.access import require_repository
from services.registry.audit_trail import audited
from services.registry.byteranges import RangeNotSatisfiable, parse_byte_range
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.metadata.blobs import BlobRecord
from services.registry.metadata.repositories import Repository
from services.registry.storage.base import PathNotFound
from services.registry.storage.paths import blob_path
from shared.names import Digest, DigestError, parse_digest

__all__ = ["blob_location", "parse_digest_param", "routes"]

logger = logging.getLogger("ecloud.registry.blobs")

# Blobs up to this size are read at once and answered with a plain response
# (one read from storage instead of a stream's open, reads and close).
SMALL_BLOB = 256 * 1024


def parse_digest_param(value: str) -> Digest:
    """The digest in a path or query parameter; DIGEST_INVALID (400) when malformed."""
    try:
        return parse_digest(value)
    except DigestError as exc:
        raise RegistryError("DIGEST_INVALID", str(exc), {"digest": value[:200]}) from exc


def blob_location(name: str, digest: Digest | str) -> str:
    return f"/v2/{name}/blobs/{digest}"


async def _linked(request: Request, action: str) -> tuple[Repository, Digest, BlobRecord]:
    name = request.path_params["name"]
    _, repository = await require_repository(request, name, action)
    digest = parse_digest_param(request.path_params["digest"])
    ctx: RegistryContext = request.app.state.ctx
    blob = None if repository is None else await ctx.blobs.stat(repository, digest)
    if repository is None or blob is None:
        raise RegistryError(
            "BLOB_UNKNOWN", "blob unknown to this repository", {"digest": str(digest)}
        )
    return repository, digest, blob


def _headers(blob: BlobRecord) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": blob.digest,
        "ETag": f'"{blob.digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable",
    }


async def head_blob(request: Request) -> Response:
    _, _, blob = await _linked(request, "pull")
    return Response(status_code=200, headers={**_headers(blob), "Content-Length": str(blob.size)})


async def get_blob(request: Request) -> Response:
    if request.method == "HEAD":
        return await head_blob(request)
    ctx: RegistryContext = request.app.state.ctx
    _, digest, blob = await _linked(request, "pull")
    headers = _headers(blob)
    url = ctx.storage.download_url(blob_path(digest))
    if url is not None:
        # ECLOUD_S3_REDIRECT: the client fetches the bytes (and any range) from S3
        # itself, with a short-lived presigned URL, and checks the digest as always.
        del headers["Content-Type"], headers["Accept-Ranges"], headers["Cache-Control"]
        headers.update({"Location": url, "Cache-Control": "no-store", "Content-Length": "0"})
        return Response(status_code=307, headers=headers)
    selected: tuple[int, int] | None = None
    header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if header is not None and (if_range is None or if_range == headers["ETag"]):
        try:
            selected = parse_byte_range(header, blob.size)
        except RangeNotSatisfiable:
            raise RegistryError(
                "RANGE_INVALID",
                f"the range {header[:100]!r} is outside the blob's {blob.size} bytes",
                headers={"Content-Range": f"bytes */{blob.size}"},
            ) from None
    first, last = (0, blob.size - 1) if selected is None else selected
    status = 200 if selected is None else 206
    if selected is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
    headers["Content-Length"] = str(last - first + 1)
    if blob.size <= SMALL_BLOB:
        # A layer of a small image, a config: one read, one plain response.
        try:
            data = await ctx.storage.get_content(blob_path(digest))
        except PathNotFound:
            raise _missing(digest) from None
        if len(data) != blob.size:
            logger.error("blob %s has %d bytes in storage, not %d", digest, len(data), blob.size)
            raise _missing(digest)
        return Response(data[first : last + 1], status_code=status, headers=headers)
    try:
        await ctx.storage.stat(blob_path(digest))
    except PathNotFound:
        raise _missing(digest) from None
    length = None if selected is None else last - first + 1
    return StreamingResponse(
        ctx.blobs.read(digest, first, length), status_code=status, headers=headers
    )


def _missing(digest: Digest) -> RegistryError:
    logger.error("blob %s is linked but missing from storage", digest)
    return RegistryError("BLOB_UNKNOWN", "blob content is missing", {"digest": str(digest)})


@audited("blob.delete")
async def delete_blob(request: Request) -> Response:
    ctx: RegistryContext = request.app.state.ctx
    repository, digest, _ = await _linked(request, "delete")
    if not await ctx.blobs.unlink(repository, digest):
        raise RegistryError(
            "BLOB_UNKNOWN", "blob unknown to this repository", {"digest": str(digest)}
        )
    return Response(status_code=202, headers={"Content-Length": "0"})


routes = [
    Route("/v2/{name:path}/blobs/{digest}", get_blob, methods=["GET", "HEAD"]),
    Route("/v2/{name:path}/blobs/{digest}", delete_blob, methods=["DELETE"]),
]
