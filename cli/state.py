"""What every command needs: output mode, server URLs, the credential and where it came from.

URLs: ``--auth-url``/``--registry-url`` > ``--base DOMAIN`` > ``EC_AUTH_URL``/
``EC_REGISTRY_URL`` > ``EC_BASE`` > the URLs saved by ``ec auth login``.
Token: ``--token`` > ``EC_TOKEN`` > the config file (whose session is
refreshed when it ends, see `cli.session`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cli.config import Config, config_path, load_config
from cli.errors import CliError, ExitCode
from cli.http import Bearer
from cli.session import LoginSession, StaticBearer

__all__ = ["SA_TOKEN_PREFIX", "State", "build_state"]

SA_TOKEN_PREFIX = "ecloud_"  # noqa: S105 - a prefix, not a secret
CONFIG_SOURCE = "config"


@dataclass(slots=True)
class State:
    json: bool
    config_path: Path
    config: Config
    token: str | None
    token_source: str  # "--token", "EC_TOKEN", "config" or "none"
    auth_url: str | None
    registry_url: str | None
    timeout: float

    @property
    def from_config(self) -> bool:
        """Whether the token in use is the config file's (the login `ec` may refresh)."""
        return self.token_source == CONFIG_SOURCE

    @property
    def is_sa_token(self) -> bool:
        return self.token is not None and self.token.startswith(SA_TOKEN_PREFIX)

    def need_auth_url(self) -> str:
        if not self.auth_url:
            raise CliError(
                "no auth service configured: pass --base DOMAIN or --auth-url URL"
                " (or set EC_AUTH_URL)"
            )
        return self.auth_url

    def need_registry_url(self) -> str:
        if not self.registry_url:
            raise CliError(
                "no registry configured: pass --base DOMAIN or --registry-url URL"
                " (or set EC_REGISTRY_URL)"
            )
        return self.registry_url

    def need_token(self) -> str:
        if not self.token:
            raise CliError(
                "not logged in: run `ec auth login` (or pass --token / set EC_TOKEN)",
                ExitCode.AUTH,
            )
        return self.token

    def bearer(self) -> Bearer:
        """The credential for requests: the config's session renews itself."""
        token = self.need_token()
        if self.from_config and not self.is_sa_token:
            return LoginSession(self)
        return StaticBearer(token)

    def need_session(self) -> Bearer:
        """A session: service-account tokens cannot manage accounts."""
        self.need_token()
        if self.is_sa_token:
            raise CliError(
                "this command needs a login session, not a service-account token:"
                " run `ec auth login`",
                ExitCode.AUTH,
            )
        return self.bearer()


def _url(value: str, option: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise CliError(f"{option} must start with http:// or https://, got {value!r}")
    return value


def _base(domain: str, service: str) -> str:
    domain = domain.strip().strip("/")
    if not domain or "/" in domain or domain.startswith(("http:", "https:")):
        raise CliError(f"--base takes a domain such as example.com, got {domain!r}")
    return f"https://{service}.{domain}"


def build_state(
    *,
    json_output: bool,
    token: str | None,
    base: str | None,
    auth_url: str | None,
    registry_url: str | None,
    env: Mapping[str, str] | None = None,
) -> State:
    env = os.environ if env is None else env
    path = config_path(env)
    config = load_config(path)

    def pick(explicit: str | None, option: str, service: str, env_name: str) -> str | None:
        if explicit:
            return _url(explicit, option)
        if base:
            return _base(base, service)
        if env.get(env_name):
            return _url(env[env_name], env_name)
        if env.get("EC_BASE"):
            return _base(env["EC_BASE"], service)
        return getattr(config, f"{service}_url") or None

    if token:
        chosen, source = token.strip(), "--token"
    elif env.get("EC_TOKEN"):
        chosen, source = env["EC_TOKEN"].strip(), "EC_TOKEN"
    elif config.token:
        chosen, source = config.token, CONFIG_SOURCE
    else:
        chosen, source = None, "none"
    return State(
        json=json_output,
        config_path=path,
        config=config,
        token=chosen,
        token_source=source,
        auth_url=pick(auth_url, "--auth-url", "auth", "EC_AUTH_URL"),
        registry_url=pick(registry_url, "--registry-url", "registry", "EC_REGISTRY_URL"),
        timeout=_timeout(env.get("EC_TIMEOUT")),
    )


def _timeout(raw: str | None) -> float:
    try:
        value = float(raw or 30)
    except ValueError as exc:
        raise CliError(f"EC_TIMEOUT must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise CliError("EC_TIMEOUT must be positive")
    return value
