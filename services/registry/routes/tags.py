"""``GET /v2/<name>/tags/list``: the repository's tags, paged with ``n`` and ``last``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.registry.access import require_repository
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.metadata.tags import list_tag_names
from services.registry.pagination import fetch_page, parse_page
from shared.names import is_valid_tag

__all__ = ["routes"]


async def tags_list(request: Request) -> Response:
    name = request.path_params["name"]
    _, repository = await require_repository(request, name, "pull")
    if repository is None:
        raise RegistryError("NAME_UNKNOWN", f"repository {name} does not exist", {"name": name})
    page_request = parse_page(request.query_params, is_valid_tag, "TAG_INVALID")
    ctx: RegistryContext = request.app.state.ctx
    repo_id = repository.id

    async def fetch(last: str | None, limit: int) -> list[str]:
        return await list_tag_names(ctx.db, repo_id, last, limit)

    page = await fetch_page(f"/v2/{name}/tags/list", page_request, fetch)
    return JSONResponse({"name": name, "tags": page.items}, headers=page.headers())


routes = [Route("/v2/{name:path}/tags/list", tags_list, methods=["GET"])]
