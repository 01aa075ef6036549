"""Dashboard API: the caller's repositories and tags, as the cloud dashboard and ``ec`` read them.

``GET /api/repos``, ``GET /api/repos/{name}``, ``GET /api/repos/{name}/tags``
and ``DELETE /api/repos/{name}/tags/{tag}``, with the seed document's shapes.
Each tag also carries fields the seed does not name, for the web dashboard
(``/ui/``): ``media_type``, ``platforms`` (an index's ``os``/``architecture``/
``variant`` and the manifest for each) and ``referrers`` (artifacts whose
``subject`` is the tagged manifest, with ``artifact_type`` and annotations).

Who may call: a session token (every action on the caller's own namespace)
or a registry token whose ``access`` claim holds the action on the repository
(``pull`` to read, ``delete`` to delete a tag); listing with a registry token
shows the repositories it covers, or all of them with ``registry:catalog:*``.
On top of the token, the repository's recorded owner must be the caller.

No existence oracle: a repository of someone else answers exactly like a
missing one (404 NAME_UNKNOWN, same body), whatever token is sent, and so
does the caller's own repository to a token that holds no action on it (a
service account scoped to other repositories). A token holding some action
but not the one asked (pull-only, deleting) gets 403 DENIED: it is
authenticated, so a 401 would wrongly tell a dashboard to log in again.

Routing: names contain slashes, tags never do, so ``/api/repos/{name}/tags``
and ``/api/repos/{name}/tags/{tag}`` are matched before the bare
``/api/repos/{name}``; the details of a repository whose name itself ends in
``/tags`` are therefore reached through the listing, not by name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.registry.access import authenticate_user, scope_string, validate_name
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.metadata.dashboard import (
    Artifact,
    Platform,
    RepositorySummary,
    TagDetail,
    list_tag_details,
    summarize_repositories,
)
from services.registry.metadata.repositories import (
    Repository,
    get_repository,
    list_repositories,
)
from services.registry.metadata.tags import delete_tag
from shared.names import is_valid_tag

__all__ = ["routes"]

CATALOG_SCOPE = "registry:catalog:*"


def rfc3339(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary_json(summary: RepositorySummary) -> dict[str, Any]:
    # Only what tells the user something: no constant "visibility" (every
    # repository is private) and no "owner_id" (always the caller's own id).
    return {
        "name": summary.repository.name,
        "tag_count": summary.tag_count,
        "total_size": summary.total_size,
        "last_pushed": rfc3339(summary.last_pushed),
    }


def _platform_json(platform: Platform) -> dict[str, Any]:
    entry = {"os": platform.os, "architecture": platform.architecture}
    if platform.variant:
        entry["variant"] = platform.variant
    return {**entry, "digest": platform.digest}


def _artifact_json(artifact: Artifact) -> dict[str, Any]:
    return {
        "digest": artifact.digest,
        "media_type": artifact.media_type,
        "artifact_type": artifact.artifact_type,
        "size": artifact.size,
        "annotations": dict(artifact.annotations),
        "created_at": rfc3339(artifact.created_at),
    }


def _tag_json(tag: TagDetail) -> dict[str, Any]:
    return {
        "name": tag.name,
        "digest": tag.digest,
        "size": tag.size,
        "pushed_at": rfc3339(tag.pushed_at),
        "media_type": tag.media_type,
        "platforms": [_platform_json(p) for p in tag.platforms],
        "referrers": [_artifact_json(a) for a in tag.referrers],
    }


async def _repository(request: Request, action: str) -> Repository:
    """The repository named in the path, when the caller owns it and holds `action` on it."""
    name: str = request.path_params["name"]
    # The name is checked before it goes into a challenge.
    validate_name(name)
    caller = await authenticate_user(request, scope_string(name, frozenset({action})))
    ctx: RegistryContext = request.app.state.ctx
    repository = await get_repository(ctx.db, name)
    held = caller.actions_for(name)
    # A token that covers nothing here (another user's name, or a service
    # account scoped to other repositories) learns nothing: same as missing.
    if repository is None or repository.owner_id != caller.subject or not held:
        raise RegistryError("NAME_UNKNOWN", f"repository {name} does not exist", {"name": name})
    if action not in held:
        raise RegistryError(
            "DENIED",
            f"this token does not grant {action} on {name}",
            {"name": name, "action": action},
        )
    return repository


async def list_repos(request: Request) -> Response:
    caller = await authenticate_user(request, CATALOG_SCOPE)
    ctx: RegistryContext = request.app.state.ctx
    repositories = await list_repositories(ctx.db, caller.subject)
    if not caller.has_catalog():
        repositories = [r for r in repositories if "pull" in caller.actions_for(r.name)]
    summaries = await summarize_repositories(ctx.db, repositories)
    return JSONResponse({"repositories": [_summary_json(s) for s in summaries]})


async def get_repo(request: Request) -> Response:
    repository = await _repository(request, "pull")
    ctx: RegistryContext = request.app.state.ctx
    [summary] = await summarize_repositories(ctx.db, [repository])
    return JSONResponse(_summary_json(summary))


async def list_tags(request: Request) -> Response:
    repository = await _repository(request, "pull")
    ctx: RegistryContext = request.app.state.ctx
    tags = await list_tag_details(ctx.db, repository.id)
    return JSONResponse({"name": repository.name, "tags": [_tag_json(t) for t in tags]})


async def delete_repo_tag(request: Request) -> Response:
    """Remove one tag, as ``DELETE /v2/<name>/manifests/<tag>`` does.

    When no other tag points to the manifest, `delete_tag` queues it (in the
    same transaction) for the garbage collector after the grace period; the
    sweep then removes it and the blobs only it used. Nothing here deletes a
    manifest or a blob directly.
    """
    repository = await _repository(request, "delete")
    tag: str = request.path_params["tag"]
    if not is_valid_tag(tag):
        raise RegistryError("TAG_INVALID", f"{tag[:200]!r} is not a valid tag", {"tag": tag[:200]})
    ctx: RegistryContext = request.app.state.ctx
    if not await delete_tag(ctx.db, repository.id, tag, ctx.settings.review_delays.grace):
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            f"tag {tag} does not exist in {repository.name}",
            {"name": repository.name, "tag": tag},
        )
    return Response(status_code=204)


routes = [
    Route("/api/repos", list_repos, methods=["GET"]),
    Route("/api/repos/{name:path}/tags/{tag}", delete_repo_tag, methods=["DELETE"]),
    Route("/api/repos/{name:path}/tags", list_tags, methods=["GET"]),
    Route("/api/repos/{name:path}", get_repo, methods=["GET"]),
]
