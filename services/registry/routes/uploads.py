"""``/v2/<name>/blobs/uploads/``: start (POST, monolithic, mount), PATCH, PUT, GET, DELETE.

Pushing needs pull and push on the repository; the first push creates the
repository inside the caller's own namespace. An upload id answers only in
the repository that started it. ``Range`` headers are inclusive
(``0-<last byte offset>``), as the OCI spec and clients read them.

A mount (``?mount=<digest>&from=<source>``) that lacks a token covering the
target gets a challenge naming the target and, when it is in the same
namespace, the source (``repository:<target>:pull,push
repository:<source>:pull``), so a client that copies it gets a token that
allows the mount. A token that covers the target but not the source falls
back to an ordinary upload (202).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from services.registry.access import mount_source, require_repository, scope_string
from services.registry.auth import Caller
from services.registry.byteranges import (
    BEYOND_ANY_SIZE,
    MalformedRange,
    RangeNotSatisfiable,
    parse_content_range,
)
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.metadata.blobs import BlobRecord
from services.registry.metadata.repositories import Repository
from services.registry.metadata.uploads import Upload
from services.registry.routes.blobs import blob_location, parse_digest_param
from services.registry.storage.uploads import ChunkOutOfOrder
from shared.names import Digest, is_valid_name, namespace_of
from shared.numbers import saturating_int

__all__ = ["routes"]


def _ctx(request: Request) -> RegistryContext:
    ctx: RegistryContext = request.app.state.ctx
    return ctx


def _upload_headers(name: str, upload: Upload) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload.id}",
        "Range": f"0-{max(upload.size - 1, 0)}",
        "Docker-Upload-UUID": upload.id,
    }


def _created(name: str, blob: BlobRecord) -> Response:
    return Response(
        status_code=201,
        headers={
            "Location": blob_location(name, blob.digest),
            "Docker-Content-Digest": blob.digest,
        },
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    received = _ctx(request).metrics.upload_bytes
    try:
        async for chunk in request.stream():
            if chunk:
                received.inc(len(chunk))
                yield chunk
    except ClientDisconnect:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID", "the client went away before sending the whole body"
        ) from None


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    length = saturating_int(raw, BEYOND_ANY_SIZE)
    if length is None:
        raise RegistryError("SIZE_INVALID", "Content-Length must be a non-negative integer")
    if length >= BEYOND_ANY_SIZE:
        raise RegistryError("SIZE_INVALID", "Content-Length is larger than any blob can be")
    return length


async def _repository(request: Request, *actions: str) -> tuple[str, Repository]:
    """The repository of an upload URL; an unknown repository has no uploads."""
    name = request.path_params["name"]
    _, repository = await require_repository(request, name, *actions)
    if repository is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", "no such upload in this repository")
    return name, repository


def _mount_source(request: Request, target: str) -> str | None:
    """The ``from`` of a mount that could succeed: a valid name in the target's namespace.

    Only such a source is named in the challenge (next to the target): a
    mount never crosses namespaces, and a source elsewhere is not echoed, so
    the answer says nothing about other namespaces.
    """
    if request.query_params.get("mount") is None:
        return None
    source = request.query_params.get("from")
    if not source or source == target or not is_valid_name(source):
        return None
    namespace = namespace_of(source)
    if namespace is None or namespace != namespace_of(target):
        return None
    return source


async def _mount(
    request: Request, caller: Caller, target: Repository, source_name: str, digest: Digest
) -> BlobRecord | None:
    """Link `digest` from `source_name` when the caller owns it and may pull it.

    None (the client falls back to an upload) when the token does not cover
    the source or its recorded owner is someone else (`access.mount_source`):
    never a second 401, which would fail the push of a token scoped to the
    target alone.
    """
    ctx = _ctx(request)
    source = await mount_source(ctx, caller, target, source_name)
    if source is None:
        return None
    return await ctx.blobs.mount(target, source, digest)


async def start_upload(request: Request) -> Response:
    name = request.path_params["name"]
    source = _mount_source(request, name)
    also = (scope_string(source, ("pull",)),) if source else ()
    caller, repository = await require_repository(
        request, name, "pull", "push", create=True, also=also
    )
    assert repository is not None  # create=True returns the repository or raises
    ctx = _ctx(request)
    mount = request.query_params.get("mount")
    if mount is not None:
        digest = parse_digest_param(mount)
        blob = None if source is None else await _mount(request, caller, repository, source, digest)
        if blob is not None:
            return _created(name, blob)
    digest_param = request.query_params.get("digest")
    if digest_param is not None:
        digest = parse_digest_param(digest_param)
        upload = await ctx.uploads.start(repository)
        blob = await ctx.uploads.finish(
            repository, upload.id, _body(request), digest, _content_length(request)
        )
        return _created(name, blob)
    upload = await ctx.uploads.start(repository)
    return Response(status_code=202, headers=_upload_headers(name, upload))


def _chunk_range(request: Request) -> tuple[int | None, int | None]:
    """(start, length) from ``Content-Range``/``Content-Length``; None where absent."""
    length = _content_length(request)
    raw = request.headers.get("content-range")
    if raw is None:
        return None, length
    try:
        chunk = parse_content_range(raw)
    except MalformedRange as exc:
        raise RegistryError("BLOB_UPLOAD_INVALID", str(exc), {"range": raw[:100]}) from None
    except RangeNotSatisfiable as exc:
        raise RegistryError("RANGE_INVALID", str(exc), {"range": raw[:100]}) from None
    if length is not None and length != chunk.length:
        raise RegistryError(
            "SIZE_INVALID",
            f"Content-Length {length} does not match Content-Range {chunk.start}-{chunk.end}",
        )
    return chunk.start, chunk.length


async def patch_upload(request: Request) -> Response:
    name, repository = await _repository(request, "pull", "push")
    start, length = _chunk_range(request)
    ctx = _ctx(request)
    try:
        upload = await ctx.uploads.append(
            repository, request.path_params["upload_id"], _body(request), start, length
        )
    except ChunkOutOfOrder as exc:
        raise RegistryError(
            "RANGE_INVALID",
            f"chunk out of order: the upload holds {exc.upload.size} bytes;"
            f" the next chunk starts at {exc.upload.size}",
            headers=_upload_headers(name, exc.upload),
        ) from None
    return Response(status_code=202, headers=_upload_headers(name, upload))


async def put_upload(request: Request) -> Response:
    name, repository = await _repository(request, "pull", "push")
    ctx = _ctx(request)
    upload_id = request.path_params["upload_id"]
    await ctx.uploads.get(repository, upload_id)  # unknown ids before digest errors
    raw = request.query_params.get("digest")
    if raw is None:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    digest = parse_digest_param(raw)
    start, length = _chunk_range(request)
    if start is not None:
        upload = await ctx.uploads.get(repository, upload_id)
        if start != upload.size:
            raise RegistryError(
                "RANGE_INVALID",
                f"chunk out of order: the upload holds {upload.size} bytes",
                headers=_upload_headers(name, upload),
            )
    blob = await ctx.uploads.finish(repository, upload_id, _body(request), digest, length)
    return _created(name, blob)


async def upload_status(request: Request) -> Response:
    name, repository = await _repository(request, "pull")
    upload = await _ctx(request).uploads.get(repository, request.path_params["upload_id"])
    return Response(status_code=204, headers=_upload_headers(name, upload))


async def cancel_upload(request: Request) -> Response:
    _, repository = await _repository(request, "pull", "push")
    await _ctx(request).uploads.cancel(repository, request.path_params["upload_id"])
    return Response(status_code=204)


routes = [
    Route("/v2/{name:path}/blobs/uploads/", start_upload, methods=["POST"]),
    Route("/v2/{name:path}/blobs/uploads", start_upload, methods=["POST"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", patch_upload, methods=["PATCH"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", put_upload, methods=["PUT"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", upload_status, methods=["GET"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", cancel_upload, methods=["DELETE"]),
]
