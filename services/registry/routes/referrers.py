"""``GET /v2/<name>/referrers/<digest>``: manifests whose ``subject`` is that digest.

The answer is always an OCI image index (200), empty when nothing refers to
the digest or the subject itself was never pushed; ``?artifactType=`` filters
it and says so in ``OCI-Filters-Applied`` (a type no manifest can have, such
as one holding NUL, matches nothing).
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.registry.access import require_repository, validate_name
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.manifest_schema import OCI_INDEX
from services.registry.metadata.manifests import list_referrers
from shared.names import DigestError, parse_digest

__all__ = ["routes"]


def _artifact_type(query: str) -> str | None:
    """The ``artifactType`` parameter, with a raw ``+`` kept as ``+``.

    Form decoding would turn the ``+`` of ``…+json`` into a space; a media
    type never holds a space, and clients often send the type unencoded.
    """
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key) == "artifactType" and value:
            return unquote(value)
    return None


async def referrers(request: Request) -> Response:
    name = request.path_params["name"]
    validate_name(name)
    raw = request.path_params["digest"]
    try:
        subject = str(parse_digest(raw))
    except DigestError as exc:
        raise RegistryError("DIGEST_INVALID", str(exc), {"digest": raw[:200]}) from exc
    _, repository = await require_repository(request, name, "pull")
    artifact_type = _artifact_type(request.url.query)
    found = []
    # A type no manifest can hold (NUL, which PostgreSQL cannot even compare)
    # matches nothing.
    if repository is not None and "\x00" not in (artifact_type or ""):
        ctx: RegistryContext = request.app.state.ctx
        found = await list_referrers(ctx.db, repository.id, subject, artifact_type)
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [r.descriptor() for r in found],
    }
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        media_type=OCI_INDEX,
        headers=headers,
    )


routes = [Route("/v2/{name:path}/referrers/{digest}", referrers, methods=["GET"])]
