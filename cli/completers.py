"""Shell completion of values from the server: ids, repositories, tags.

Called by the shell (through ``ec completion``'s script) on every TAB, so
each completer is quiet and quick: it uses the same credentials and URLs as
a command would (the global options already typed, the environment, the
config file), waits at most a few seconds, and offers nothing when anything
fails (not logged in, server down) instead of printing an error into the
user's command line.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from typing import Any

import typer

from cli.errors import CliError
from cli.http import Service
from cli.registry_api import registry_bearer
from cli.state import State, build_state
from shared.names import is_valid_name

__all__ = [
    "complete_references",
    "complete_repositories",
    "complete_service_accounts",
    "complete_sessions",
    "complete_tags",
    "complete_tokens",
]

COMPLETION_TIMEOUT = 5.0
MAX_ACCOUNTS = 20  # token ids take one request per service account


def _state(ctx: typer.Context) -> State:
    root = ctx.find_root().params
    with contextlib.redirect_stderr(io.StringIO()):  # no warnings into the command line
        state = build_state(
            json_output=False,
            token=root.get("token"),
            base=root.get("base"),
            auth_url=root.get("auth_url"),
            registry_url=root.get("registry_url"),
        )
    state.timeout = min(state.timeout, COMPLETION_TIMEOUT)
    return state


def _quietly(values: Callable[[], Iterable[str]], incomplete: str) -> list[str]:
    try:
        return sorted({v for v in values() if v.startswith(incomplete)})
    except (CliError, KeyError, TypeError, AttributeError, ValueError):
        return []


def _auth_get(state: State, path: str) -> Any:
    service = Service("auth service", state.need_auth_url(), state.timeout)
    return service.json("GET", path, bearer=state.need_session())


def _account_ids(state: State) -> list[str]:
    body = _auth_get(state, "/api/service-accounts")
    return [str(a["id"]) for a in body.get("service_accounts", [])]


def complete_service_accounts(ctx: typer.Context, incomplete: str) -> list[str]:
    return _quietly(lambda: _account_ids(_state(ctx)), incomplete)


def complete_tokens(ctx: typer.Context, incomplete: str) -> list[str]:
    def ids() -> Iterable[str]:
        state = _state(ctx)
        for account in _account_ids(state)[:MAX_ACCOUNTS]:
            body = _auth_get(state, f"/api/service-accounts/{account}/tokens")
            yield from (str(t["id"]) for t in body.get("tokens", []))

    return _quietly(ids, incomplete)


def complete_sessions(ctx: typer.Context, incomplete: str) -> list[str]:
    def ids() -> Iterable[str]:
        body = _auth_get(_state(ctx), "/api/refresh-tokens")
        return [str(t["id"]) for t in body.get("refresh_tokens", [])]

    return _quietly(ids, incomplete)


def _repositories(state: State) -> list[str]:
    registry = Service("registry", state.need_registry_url(), state.timeout)
    bearer = registry_bearer(state, registry, "registry:catalog:*")
    body = registry.json("GET", "/api/repos", bearer=bearer)
    return [str(r["name"]) for r in body.get("repositories", [])]


def _tags(state: State, repository: str) -> list[str]:
    if not is_valid_name(repository):
        return []
    registry = Service("registry", state.need_registry_url(), state.timeout)
    bearer = registry_bearer(state, registry, f"repository:{repository}:pull")
    body = registry.json("GET", f"/api/repos/{repository}/tags", bearer=bearer)
    return [str(t["name"]) for t in body.get("tags", [])]


def complete_repositories(ctx: typer.Context, incomplete: str) -> list[str]:
    return _quietly(lambda: _repositories(_state(ctx)), incomplete)


def complete_references(ctx: typer.Context, incomplete: str) -> list[str]:
    """``REPOSITORY`` or, once a ``:`` is typed, ``REPOSITORY:TAG``."""
    if ":" in incomplete:
        repository = incomplete.split(":", 1)[0]
        return _quietly(
            lambda: (f"{repository}:{t}" for t in _tags(_state(ctx), repository)), incomplete
        )
    return complete_repositories(ctx, incomplete)


def complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    """The TAG after a REPOSITORY argument."""
    repository = ctx.params.get("reference") or ctx.params.get("name")
    if not isinstance(repository, str) or ":" in repository or "@" in repository:
        return []
    return _quietly(lambda: _tags(_state(ctx), repository), incomplete)
