"""``GET /v2/_catalog``: the caller's own repositories, paged with ``n`` and ``last``.

There is no cross-user listing. A registry token obtained with a service
account lists every repository of its user only when it carries the
``registry:catalog:*`` grant (the auth service grants that only to accounts
scoped to the whole registry); otherwise just the repositories its access
claim names. A token without a subject (anonymous) is not a login: 401.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.registry.access import authenticate_user
from services.registry.auth import Caller
from services.registry.context import RegistryContext
from services.registry.metadata.catalog import list_repository_names
from services.registry.pagination import fetch_page, parse_page
from shared.names import is_valid_name

__all__ = ["routes"]


def _visible_names(caller: Caller) -> frozenset[str] | None:
    """The names a narrowed token may list; None when it may list all the owner's."""
    if caller.kind == "registry" and caller.service_account and not caller.has_catalog():
        return frozenset(s.name for s in caller.access if s.type == "repository")
    return None


async def catalog(request: Request) -> Response:
    caller = await authenticate_user(request, "registry:catalog:*")
    page_request = parse_page(request.query_params, is_valid_name, "NAME_INVALID")
    ctx: RegistryContext = request.app.state.ctx
    only = _visible_names(caller)

    async def fetch(last: str | None, limit: int) -> list[str]:
        return await list_repository_names(ctx.db, caller.subject, last, limit, only)

    page = await fetch_page("/v2/_catalog", page_request, fetch)
    return JSONResponse({"repositories": page.items}, headers=page.headers())


routes = [Route("/v2/_catalog", catalog, methods=["GET"])]
