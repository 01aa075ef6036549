"""The registry's audit trail: one line on ``ecloud.audit`` per push, pull, delete and refusal.

Lines (through ``shared.audit.audit``; never a token, a secret or a URL's
query):

* ``manifest.push``, ``manifest.pull`` (GET, not HEAD), ``manifest.delete``,
  ``tag.delete``, ``blob.delete``: actor, client address, repository,
  reference, outcome (``ok`` or the error code) and HTTP status (the request
id comes with every log line), written by
  the `audited` decorator around the route;
* ``authz.denied``: every refused request, written where the refusal is
  decided (``services.registry.access``, the dashboard and webhook APIs),
  with the reason and what was asked. A request without any credentials is
  audited when it names a repository; the bare ``GET /v2/`` probe every
  client starts with is not.

The actor is the verified caller: user id and name, and the service
account's id and name when one was used.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from services.registry.auth import Caller
from services.registry.errors import RegistryError
from shared.audit import audit

__all__ = ["audit_denied", "audited", "remember_caller"]

Handler = Callable[[Request], Awaitable[Response]]

# Refusals are audited as authz.denied where they are decided.
_REFUSALS = ("UNAUTHORIZED", "DENIED")


def remember_caller(request: Request, caller: Caller) -> None:
    request.state.caller = caller


def _actor(caller: Caller | None) -> dict[str, Any]:
    if caller is None:
        return {"user": None, "user_id": None}
    fields: dict[str, Any] = {
        "user": caller.username,
        "user_id": caller.subject or None,
    }
    if caller.service_account is not None:
        fields["sa"] = caller.service_account
        fields["sa_name"] = caller.service_account_name
    return fields


def _common(request: Request) -> dict[str, Any]:
    # The request id is added to every log line by the logging set-up.
    return {"client": request.client.host if request.client else None, "method": request.method}


def _reference(request: Request) -> str | None:
    params = request.path_params
    value = params.get("reference") or params.get("digest") or params.get("tag")
    return str(value)[:200] if value is not None else None


def audit_denied(
    request: Request,
    reason: str,
    *,
    caller: Caller | None = None,
    repository: str | None = None,
    scope: str | None = None,
) -> None:
    if caller is None:
        caller = getattr(request.state, "caller", None)
    audit(
        "authz.denied",
        reason=reason,
        **_actor(caller),
        **_common(request),
        repository=(repository or request.path_params.get("name") or None),
        reference=_reference(request),
        scope=scope,
        path=request.url.path[:300],
    )


def audited(action: str, methods: tuple[str, ...] | None = None) -> Callable[[Handler], Handler]:
    """Audit every outcome of the wrapped route as `action` (only for `methods` if given)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            if methods is not None and request.method not in methods:
                return await handler(request)
            try:
                response = await handler(request)
            except RegistryError as exc:
                if exc.code not in _REFUSALS:
                    _outcome(request, action, exc.code, exc.status)
                raise
            except Exception as exc:
                _outcome(request, action, f"error:{type(exc).__name__}", None)
                raise
            digest = response.headers.get("docker-content-digest")
            _outcome(request, action, "ok", response.status_code, digest)
            return response

        return route

    return wrap


def _outcome(
    request: Request, action: str, outcome: str, status: int | None, digest: str | None = None
) -> None:
    fields: dict[str, Any] = {
        **_actor(getattr(request.state, "caller", None)),
        **_common(request),
        "repository": request.path_params.get("name"),
        "reference": _reference(request),
        "outcome": outcome,
        "status": status,
    }
    if digest:
        fields["digest"] = digest
    audit(action, **fields)
