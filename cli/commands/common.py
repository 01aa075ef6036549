"""Pieces every command module uses: the state and the two services."""

from __future__ import annotations

from urllib.parse import quote

import typer

from cli.http import Service
from cli.state import State

__all__ = ["auth_service", "registry_service", "segment", "state_of"]


def state_of(ctx: typer.Context) -> State:
    state = ctx.find_root().obj
    assert isinstance(state, State)
    return state


def auth_service(state: State) -> Service:
    return Service("auth service", state.need_auth_url(), state.timeout)


def registry_service(state: State) -> Service:
    return Service("registry", state.need_registry_url(), state.timeout)


def segment(value: str) -> str:
    """An id as one URL path segment: ``../`` or ``?`` in user input cannot reach another path."""
    return quote(value, safe="")
