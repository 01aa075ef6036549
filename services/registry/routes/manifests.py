"""``/v2/<name>/manifests/<reference>``: HEAD, GET, PUT, DELETE by tag or digest.

The bytes served are exactly the bytes pushed, with their stored media type.
PUT reads at most `MAX_MANIFEST_BYTES` (413 beyond), validates the document
(``manifest_schema``), then stores it with its references and tag in one
transaction (``metadata.manifests``). DELETE by tag removes the tag; by
digest, the manifest and every tag on it.

A reference that is neither a valid tag nor a digest is a 400 (TAG_INVALID or
DIGEST_INVALID) for PUT and DELETE, before any token check; for GET and HEAD it
is an unknown manifest (404 MANIFEST_UNKNOWN) after the token check, as OCI
clients expect.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.registry.access import require_repository, validate_name
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.manifest_schema import MAX_MANIFEST_BYTES, ManifestError, parse_manifest
from services.registry.metadata.manifests import (
    StoredManifest,
    delete_manifest,
    get_manifest,
    get_tagged_manifest,
    store_manifest,
)
from services.registry.metadata.repositories import Repository
from services.registry.metadata.tags import delete_tag
from shared.names import DigestError, is_valid_tag, parse_digest
from shared.numbers import saturating_int

__all__ = ["Reference", "parse_reference", "routes"]


@dataclass(frozen=True, slots=True)
class Reference:
    """A manifest reference: exactly one of `tag` and `digest` is set."""

    tag: str | None = None
    digest: str | None = None


def parse_reference(value: str) -> Reference:
    if ":" in value:
        try:
            return Reference(digest=str(parse_digest(value)))
        except DigestError as exc:
            raise RegistryError("DIGEST_INVALID", str(exc), {"digest": value[:200]}) from exc
    if not is_valid_tag(value):
        raise RegistryError(
            "TAG_INVALID",
            "invalid tag: up to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'",
            {"tag": value[:200]},
        )
    return Reference(tag=value)


def _ctx(request: Request) -> RegistryContext:
    ctx: RegistryContext = request.app.state.ctx
    return ctx


def _unknown_repository(name: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", f"repository {name} does not exist", {"name": name})


async def _lookup(request: Request, repository: Repository, reference: Reference) -> StoredManifest:
    db = _ctx(request).db
    if reference.digest is not None:
        stored = await get_manifest(db, repository.id, reference.digest)
    else:
        assert reference.tag is not None
        stored = await get_tagged_manifest(db, repository.id, reference.tag)
    if stored is None:
        what = reference.digest or reference.tag
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            f"manifest {what} is not in repository {repository.name}",
            {"reference": what},
        )
    return stored


def _reference_to_read(value: str) -> Reference:
    """The reference of a GET/HEAD: one that can name nothing is an unknown manifest.

    Clients (and the OCI conformance suite) probe with references such as
    ``.INVALID_MANIFEST_NAME`` and expect 404 MANIFEST_UNKNOWN, not a 400.
    """
    try:
        return parse_reference(value)
    except RegistryError:
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            "no manifest can have this reference: it is neither a valid tag nor a digest",
            {"reference": value[:200]},
        ) from None


async def get_or_head(request: Request) -> Response:
    name = request.path_params["name"]
    # The reference is judged after the token check, like any unknown manifest.
    _, repository = await require_repository(request, name, "pull")
    if repository is None:
        raise _unknown_repository(name)
    reference = _reference_to_read(request.path_params["reference"])
    stored = await _lookup(request, repository, reference)
    headers = {
        "Docker-Content-Digest": stored.digest,
        "Content-Type": stored.media_type,
        "Content-Length": str(stored.size),
        "ETag": f'"{stored.digest}"',
    }
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    return Response(stored.payload, status_code=200, headers=headers)


async def _read_body(request: Request) -> bytes:
    """The request body, refusing (413) anything over the manifest size limit."""
    too_large = RegistryError(
        "MANIFEST_TOO_LARGE",
        f"manifest exceeds the limit of {MAX_MANIFEST_BYTES} bytes",
        {"limit": MAX_MANIFEST_BYTES},
    )
    declared = saturating_int(request.headers.get("content-length", ""), MAX_MANIFEST_BYTES + 1)
    if declared is not None and declared > MAX_MANIFEST_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            raise too_large
    return bytes(body)


async def put(request: Request) -> Response:
    name = request.path_params["name"]
    validate_name(name)
    reference = parse_reference(request.path_params["reference"])
    # Token and owner are checked before the body is read; a missing
    # repository is created only once the manifest has proved valid.
    _, repository = await require_repository(request, name, "pull", "push")
    payload = await _read_body(request)
    algorithm = reference.digest.split(":", 1)[0] if reference.digest else "sha256"
    try:
        manifest = parse_manifest(payload, request.headers.get("content-type"), algorithm)
    except ManifestError as exc:
        raise RegistryError(exc.code, exc.message, exc.detail, status=exc.status) from exc
    if reference.digest is not None and reference.digest != manifest.digest:
        raise RegistryError(
            "DIGEST_INVALID",
            f"the manifest's digest is {manifest.digest}, not {reference.digest}",
            {"digest": reference.digest, "actual": manifest.digest},
        )
    if repository is None:
        _, repository = await require_repository(request, name, "pull", "push", create=True)
        assert repository is not None
    try:
        ctx = _ctx(request)
        await store_manifest(
            ctx.db, repository.id, manifest, reference.tag, ctx.settings.review_delays
        )
    except ManifestError as exc:
        raise RegistryError(exc.code, exc.message, exc.detail, status=exc.status) from exc
    headers = {
        "Location": f"/v2/{name}/manifests/{manifest.digest}",
        "Docker-Content-Digest": manifest.digest,
    }
    if manifest.subject is not None:
        headers["OCI-Subject"] = manifest.subject.digest
    return Response(status_code=201, headers=headers)


async def delete(request: Request) -> Response:
    name = request.path_params["name"]
    validate_name(name)
    reference = parse_reference(request.path_params["reference"])
    _, repository = await require_repository(request, name, "delete")
    if repository is None:
        raise _unknown_repository(name)
    ctx = _ctx(request)
    delays = ctx.settings.review_delays
    if reference.digest is not None:
        removed = await delete_manifest(ctx.db, repository.id, reference.digest, delays)
    else:
        assert reference.tag is not None
        removed = await delete_tag(ctx.db, repository.id, reference.tag, delays.grace)
    if not removed:
        what = reference.digest or reference.tag
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            f"manifest {what} is not in repository {name}",
            {"reference": what},
        )
    return Response(status_code=202)


_PATH = "/v2/{name:path}/manifests/{reference}"

routes = [
    Route(_PATH, get_or_head, methods=["GET", "HEAD"]),
    Route(_PATH, put, methods=["PUT"]),
    Route(_PATH, delete, methods=["DELETE"]),
]
