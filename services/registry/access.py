"""Authorization of registry requests: one place decides, every route asks.

`require` returns the caller when it holds the actions on the repository, and
otherwise raises the 401 the Docker token flow expects: a challenge naming the
scope to ask for, with ``error="insufficient_scope"`` when a valid token
simply lacks the action.
"""

from __future__ import annotations

from starlette.requests import Request

from services.registry.auth import Caller, challenge
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from shared.scopes import REPOSITORY_ACTIONS

__all__ = ["authenticate", "require", "scope_string"]


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
        raise _unauthorized(ctx, exc.message, scope, "invalid_token") from exc
    if caller is None:
        raise _unauthorized(ctx, "authentication required", scope)
    return caller


async def require(request: Request, repository: str, *actions: str) -> Caller:
    """The caller, when it holds every one of `actions` on `repository`."""
    ctx: RegistryContext = request.app.state.ctx
    scope = scope_string(repository, frozenset(actions))
    caller = await authenticate(request, scope)
    held = caller.actions_for(repository)
    if not set(actions) <= held:
        raise _unauthorized(
            ctx,
            f"insufficient scope: {scope} is required",
            scope,
            "insufficient_scope",
        )
    return caller
