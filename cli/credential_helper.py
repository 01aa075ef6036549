"""``docker-credential-ec``: docker's credential-helper protocol, backed by ``ec``'s login.

Docker runs ``docker-credential-ec ACTION`` for the registries that
``ec auth configure-docker`` mapped to ``ec`` in ``credHelpers``, and talks
over stdin/stdout exactly as docker-credential-helpers defines:

- ``get``: stdin holds a server URL; stdout gets
  ``{"ServerURL", "Username", "Secret"}``. For the registry ``ec`` is logged
  in to, the answer is the login's refresh token as an identity token
  (``Username`` is ``<token>``), so docker uses the token endpoint's OAuth2
  refresh grant; with a service-account token saved by ``ec auth set-token``
  it is that token as the password. What ``docker login`` stored for the host
  comes first.
- ``store``: stdin holds that JSON; it is kept in ec's config file (0600).
- ``erase``: forgets what ``store`` kept (never ``ec``'s own login: that is
  ``ec auth logout``).
- ``list``: a JSON object ``{ServerURL: Username}``.
- ``version``.

Errors are one line on stdout and exit status 1; a registry with nothing to
offer answers ``credentials not found in native keychain``, the message docker
recognises to fall back to anonymous access.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TextIO

from cli.commands.docker_config import registry_host
from cli.config import Config, DockerCredential, update_config
from cli.errors import CliError
from cli.state import SA_TOKEN_PREFIX, State, build_state

__all__ = ["main", "run"]

NOT_FOUND = "credentials not found in native keychain"
MISSING_URL = "no credentials server URL"
MISSING_USERNAME = "no credentials username"
IDENTITY_TOKEN_USERNAME = "<token>"  # noqa: S105 - docker's marker, not a secret
MAX_INPUT = 64 * 1024


class HelperError(Exception):
    """A protocol error: its message is docker's to read on stdout."""


def _read(stdin: TextIO) -> str:
    data = stdin.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise HelperError("input too large")
    return data


def _server(stdin: TextIO) -> str:
    server = _read(stdin).strip()
    if not server:
        raise HelperError(MISSING_URL)
    return server


def _host(server: str) -> str:
    try:
        return registry_host(server)
    except CliError as exc:
        raise HelperError(exc.message) from exc


def _ec_host(state: State) -> str | None:
    return registry_host(state.registry_url) if state.registry_url else None


def _expired(iso: str | None) -> bool:
    if not iso:
        return False
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when.astimezone(UTC) <= datetime.now(UTC)


def _login_credential(state: State) -> tuple[str, str]:
    """What docker gets for the registry ec is logged in to."""
    token = state.token
    if token is None:
        raise HelperError(NOT_FOUND)
    if token.startswith(SA_TOKEN_PREFIX):
        return state.config.username or "ec", token  # the username is ignored for ecloud_
    refresh = state.config.refresh_token if state.from_config else None
    if not refresh:
        raise HelperError(
            "ec holds no refresh token for docker: run `ec auth login` (a token set with"
            " --token, EC_TOKEN or `ec auth set-token` cannot be handed to docker)"
        )
    if _expired(state.config.refresh_expires_at):
        raise HelperError("your ec login has expired: run `ec auth login`")
    return IDENTITY_TOKEN_USERNAME, refresh


def get(state: State, stdin: TextIO, stdout: TextIO) -> None:
    server = _server(stdin)
    host = _host(server)
    stored = state.config.docker.get(host)
    if stored is not None:
        username, secret = stored.username, stored.secret
    elif host == _ec_host(state):
        username, secret = _login_credential(state)
    else:
        raise HelperError(NOT_FOUND)
    stdout.write(json.dumps({"ServerURL": server, "Username": username, "Secret": secret}) + "\n")


def store(state: State, stdin: TextIO, stdout: TextIO) -> None:
    try:
        creds: Any = json.loads(_read(stdin))
    except ValueError as exc:
        raise HelperError(f"invalid credentials JSON: {exc}") from exc
    if not isinstance(creds, dict):
        raise HelperError("invalid credentials JSON: expected an object")
    server, username, secret = creds.get("ServerURL"), creds.get("Username"), creds.get("Secret")
    if not isinstance(server, str) or not server.strip():
        raise HelperError(MISSING_URL)
    if not isinstance(username, str) or not username:
        raise HelperError(MISSING_USERNAME)
    if not isinstance(secret, str):
        raise HelperError("invalid credentials JSON: Secret must be a string")
    host = _host(server)

    def keep(config: Config) -> None:
        config.docker[host] = DockerCredential(username, secret)

    update_config(state.config_path, keep)


def erase(state: State, stdin: TextIO, stdout: TextIO) -> None:
    host = _host(_server(stdin))
    if host not in state.config.docker:
        if host == _ec_host(state):
            return  # nothing docker stored; ec's own login ends with `ec auth logout`
        raise HelperError(NOT_FOUND)

    def forget(config: Config) -> None:
        config.docker.pop(host, None)

    update_config(state.config_path, forget)


def list_(state: State, stdin: TextIO, stdout: TextIO) -> None:
    entries = {host: c.username for host, c in state.config.docker.items()}
    host = _ec_host(state)
    if host is not None and host not in entries:
        try:
            entries[host] = _login_credential(state)[0]
        except HelperError:
            pass
    stdout.write(json.dumps(entries) + "\n")


ACTIONS = {"get": get, "store": store, "erase": erase, "list": list_}


def run(argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    if len(argv) != 1:
        stdout.write("Usage: docker-credential-ec <store|get|erase|list|version>\n")
        return 1
    action = argv[0]
    if action == "version":
        try:
            number = version("ecloud-registry")
        except PackageNotFoundError:
            number = "unknown"
        stdout.write(f"docker-credential-ec (ecloud-registry) {number}\n")
        return 0
    handler = ACTIONS.get(action)
    if handler is None:
        stdout.write(f"Unknown credential action `{action}`\n")
        return 1
    try:
        state = build_state(
            json_output=False, token=None, base=None, auth_url=None, registry_url=None
        )
        handler(state, stdin, stdout)
    except HelperError as exc:
        stdout.write(f"{exc}\n")
        return 1
    except CliError as exc:
        stdout.write(f"{exc.message}\n")
        return 1
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], sys.stdin, sys.stdout))
