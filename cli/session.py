"""A login that lasts as long as its refresh token.

``ec auth login`` keeps a session token (hours) and a refresh token (days) in
the config file. Before a request, a session token that has expired (read
from its own ``exp`` claim, without trusting it for anything else) is
exchanged at ``POST /api/session/refresh`` for a new one; a session the
server refuses (revoked, or expired early) is refreshed once and the request
sent again. Only the config file's session is refreshed: a token given with
``--token`` or ``EC_TOKEN`` is used as it is.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import jwt

from cli.config import Config, update_config
from cli.errors import CliError
from cli.http import Service

if TYPE_CHECKING:
    from cli.state import State

__all__ = ["LOGIN_ENDED", "LoginSession", "StaticBearer", "session_expired"]

LOGIN_ENDED = "your login has expired or was revoked: run `ec auth login`"
EARLY_SECONDS = 30  # refresh a little before the end: the request itself takes time


def session_expired(token: str, now: float | None = None) -> bool:
    """Whether a session JWT's ``exp`` has passed (or is about to); False when unreadable."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return False
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return False
    return exp <= (time.time() if now is None else now) + EARLY_SECONDS


class StaticBearer:
    """A token used as it is (``--token``, ``EC_TOKEN``, a service-account token)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def current(self) -> str:
        return self.token

    def renew(self) -> str | None:
        return None


class LoginSession:
    """The config file's session, refreshed with its refresh token when it ends."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.renewed = False

    def current(self) -> str:
        token = self.state.need_token()
        if session_expired(token):
            return self.renew() or token
        return token

    def renew(self) -> str | None:
        refresh_token = self.state.config.refresh_token
        if self.renewed or not refresh_token:
            return None
        self.renewed = True
        service = Service("auth service", self.state.need_auth_url(), self.state.timeout)
        body = service.json(
            "POST",
            "/api/session/refresh",
            json={"refresh_token": refresh_token},
            unauthorized=LOGIN_ENDED,
        )
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise CliError("the auth service refreshed the session without a token")

        def keep(config: Config) -> None:
            # Another ec may have logged in as someone else meanwhile: only
            # replace the session of the login this refresh token belongs to.
            if config.refresh_token == refresh_token:
                config.token = token

        update_config(self.state.config_path, keep)
        self.state.token = self.state.config.token = token
        return token
