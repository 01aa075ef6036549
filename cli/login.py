"""Opening a login session: ``POST /api/login`` with a refresh token, saved in the config."""

from __future__ import annotations

import sys
from typing import Any

from cli.config import Config, update_config
from cli.errors import CliError, ExitCode
from cli.http import Service
from cli.output import iso_time
from cli.state import State

__all__ = ["read_secret_from_stdin", "start_session"]


def read_secret_from_stdin(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CliError(f"no {what} on standard input", ExitCode.USAGE)
    return value


def start_session(state: State, username: str, password: str) -> dict[str, Any]:
    """``POST /api/login`` asking for a refresh token; the session is saved in the config."""
    body = Service("auth service", state.need_auth_url(), state.timeout).json(
        "POST",
        "/api/login",
        json={"username": username, "password": password, "refresh": True, "client_id": "ec"},
        unauthorized="wrong username or password",
    )
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        raise CliError("the auth service answered the login without a token")
    user = body.get("user") or {}
    refresh = body.get("refresh_token")

    def keep(config: Config) -> None:
        config.token = token
        config.refresh_token = refresh if isinstance(refresh, str) and refresh else None
        config.refresh_expires_at = iso_time(body.get("refresh_expires_at"))
        config.username = user.get("username", username)
        config.auth_url = state.auth_url
        config.registry_url = state.registry_url or config.registry_url

    state.config = update_config(state.config_path, keep)
    state.token, state.token_source = token, "config"
    return dict(body)
