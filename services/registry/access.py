"""Authorization of registry requests: one place decides, every route asks.

`require` returns the caller when it holds the actions on the repository, and
otherwise raises the 401 the Docker token flow expects: a challenge naming the
scope to ask for, with ``error="insufficient_scope"`` when a valid token
simply lacks the action. A challenge is built only from a validated name
(and `challenge` escapes whatever it is given). `authenticate_user` is for
the endpoints that mean "logged in" (``/v2/``, the catalog, the dashboard):
a token without a subject (what the token endpoint gives anyone without
credentials) is not a login there.

`require_repository` adds what a token alone cannot say: the repository's
recorded owner must be the caller (a token for a reused username, or any
other mismatch, is answered exactly like a missing grant, so the answer never
reveals that a repository exists), and only the namespace's owner may create
a repository by pushing to it. `mount_source` applies the same rules to the
``from`` repository of a cross-repository mount.
"""

from __future__ import annotations

from starlette.requests import Request

from services.registry.audit_trail import audit_denied, remember_caller
from services.registry.auth import Caller, challenge
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.metadata.repositories import (
    Repository,
    ensure_repository,
    get_repository,
)
from shared.names import is_valid_name, namespace_of
from shared.requestuser import identify_user
from shared.scopes import REPOSITORY_ACTIONS

__all__ = [
    "authenticate",
    "authenticate_user",
    "mount_source",
    "require",
    "require_repository",
    "scope_string",
    "validate_name",
]


def scope_string(repository: str, actions: tuple[str, ...] | frozenset[str]) -> str:
    ordered = [a for a in REPOSITORY_ACTIONS if a in actions]
    return f"repository:{repository}:{','.join(ordered)}"


def _unauthorized(
    ctx: RegistryContext, message: str, scope: str | None, error: str | None = None
) -> RegistryError:
    return RegistryError(
        "UNAUTHORIZED",
        message,
        headers={"WWW-Authenticate": challenge(ctx.settings, scope, error)},
    )


async def authenticate(request: Request, scope: str | None = None) -> Caller:
    """The verified caller; 401 with a challenge when there is no valid token."""
    ctx: RegistryContext = request.app.state.ctx
    try:
        caller = await ctx.auth.authenticate(request)
    except RegistryError as exc:
        audit_denied(request, "invalid_token", scope=scope)
        raise _unauthorized(ctx, exc.message, scope, "invalid_token") from exc
    if caller is None:
        if scope is not None:
            # The bare GET /v2/ probe of every client is not worth a line.
            audit_denied(request, "no_credentials", scope=scope)
        raise _unauthorized(ctx, "authentication required", scope)
    remember_caller(request, caller)
    identify_user(
        user_id=caller.subject, username=caller.username, service_account=caller.service_account
    )
    return caller


async def authenticate_user(request: Request, scope: str | None = None) -> Caller:
    """A caller with a subject: an anonymous token gets the same 401 as no token."""
    caller = await authenticate(request, scope)
    if caller.is_anonymous:
        ctx: RegistryContext = request.app.state.ctx
        audit_denied(request, "anonymous", caller=caller, scope=scope)
        raise _unauthorized(ctx, "authentication required", scope)
    return caller


async def require(
    request: Request, repository: str, *actions: str, also: tuple[str, ...] = ()
) -> Caller:
    """The caller, when it holds every one of `actions` on `repository`.

    `also` are further scopes the challenge names (the source of a mount),
    so a client that copies the challenge asks for all it needs at once.
    """
    validate_name(repository)
    ctx: RegistryContext = request.app.state.ctx
    scope = " ".join([scope_string(repository, frozenset(actions)), *also])
    caller = await authenticate(request, scope)
    held = caller.actions_for(repository)
    if not set(actions) <= held:
        audit_denied(
            request, "insufficient_scope", caller=caller, repository=repository, scope=scope
        )
        raise _insufficient(ctx, scope)
    return caller


def _insufficient(ctx: RegistryContext, scope: str) -> RegistryError:
    return _unauthorized(
        ctx, f"insufficient scope: {scope} is required", scope, "insufficient_scope"
    )


def validate_name(name: str) -> None:
    """NAME_INVALID (400) unless `name` follows the OCI repository name grammar."""
    if not is_valid_name(name):
        raise RegistryError(
            "NAME_INVALID",
            "invalid repository name: lowercase components [a-z0-9] joined by"
            " '.', '_', '__' or '-', separated by '/', at most 255 characters",
            {"name": name[:300]},
        )


def _may_create(caller: Caller, name: str) -> bool:
    namespace = namespace_of(name)
    if namespace is None or caller.is_anonymous:
        return False
    if caller.kind == "session":
        return caller.username == namespace
    # The auth service grants push on a name only to its namespace's owner.
    return "push" in caller.actions_for(name)


async def require_repository(
    request: Request,
    name: str,
    *actions: str,
    create: bool = False,
    also: tuple[str, ...] = (),
) -> tuple[Caller, Repository | None]:
    """The caller and the repository `name`, when the caller may act on it.

    Order: the name's grammar (400, before any auth), the token's grant (401),
    then the owner re-check. A repository owned by someone else answers the
    same 401 as a missing grant. A missing repository is created when
    `create` is set and the caller owns the namespace; otherwise None comes
    back and the route answers its own "unknown" error. `also` are extra
    scopes for the challenge (see `require`).
    """
    validate_name(name)
    ctx: RegistryContext = request.app.state.ctx
    caller = await require(request, name, *actions, also=also)
    scope = " ".join([scope_string(name, frozenset(actions)), *also])
    repository = await get_repository(ctx.db, name)
    if repository is None and create:
        if not _may_create(caller, name):
            audit_denied(
                request, "not_namespace_owner", caller=caller, repository=name, scope=scope
            )
            raise _insufficient(ctx, scope)
        events = ctx.events.for_request(request, caller)
        repository = await ensure_repository(ctx.db, name, caller.subject, events)
    if repository is not None and repository.owner_id != caller.subject:
        audit_denied(request, "not_owner", caller=caller, repository=name, scope=scope)
        raise _insufficient(ctx, scope)
    return caller, repository


async def mount_source(
    ctx: RegistryContext, caller: Caller, target: Repository, source_name: str | None
) -> Repository | None:
    """The ``from`` repository of a mount into `target`, when the caller may pull from it.

    Pull must be granted on it and its recorded owner must be the caller;
    otherwise None, and the route answers a plain upload (202), so a refused
    mount reveals nothing about the source.
    """
    if not source_name or not is_valid_name(source_name) or source_name == target.name:
        return None
    if "pull" not in caller.actions_for(source_name):
        return None
    source = await get_repository(ctx.db, source_name)
    if source is None or source.owner_id != caller.subject:
        return None
    return source
