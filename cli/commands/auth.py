"""``ec auth login|logout|status|set-token|password|configure-docker``: the CLI's own credential.

``login`` keeps a session and a refresh token in the config file, so a login
lasts as long as the refresh token (see `cli.session`); ``logout`` revokes
both on the server before forgetting them.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cli.commands import docker_config
from cli.commands.common import auth_service, state_of
from cli.config import Config, update_config
from cli.errors import CliError, ExitCode
from cli.login import read_secret_from_stdin, start_session
from cli.output import JsonFlag, Mode, emit_json, emit_record, iso_time, mode_of, say
from cli.session import LoginSession
from cli.state import SA_TOKEN_PREFIX, State

__all__ = ["app"]

app = typer.Typer(
    help="""Log in and out, and manage service accounts, tokens and sessions.

Examples:

  ec --auth-url http://127.0.0.1:5001 auth login

  echo "$PASSWORD" | ec auth login --username alice --password-stdin

  ec auth status

  ec auth configure-docker

  ec auth service-accounts create --name ci --scope storage.me.registry=read,create,delete
""",
    no_args_is_help=True,
)
app.command("configure-docker")(docker_config.configure_docker)


@app.command()
def login(
    ctx: typer.Context,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Your username (prompted if absent).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Log in with your username and password; the login is saved in the config file.

    The session it opens is refreshed as it ends, for as long as the refresh
    token lasts (30 days by default): no need to log in every day.

    Examples:

      ec --base example.com auth login

      echo "$PASSWORD" | ec --auth-url http://127.0.0.1:5001 auth login -u alice --password-stdin
    """
    mode = mode_of(ctx, as_json=as_json)
    state = state_of(ctx)
    state.need_auth_url()
    if password_stdin:
        if not username:
            raise CliError("--password-stdin needs --username", ExitCode.USAGE)
        secret = read_secret_from_stdin("password")
    else:
        username = username or typer.prompt("Username", err=True)
        secret = typer.prompt("Password", hide_input=True, err=True)
    if secret.startswith(SA_TOKEN_PREFIX):
        raise CliError(
            "a service-account token is not a password: use `ec auth set-token` or EC_TOKEN",
            ExitCode.USAGE,
        )
    body = start_session(state, username, secret)
    user = body.get("user") or {}
    if mode is Mode.JSON:
        emit_json(
            {
                "username": user.get("username"),
                "user_id": user.get("id"),
                "admin": user.get("admin"),
                "expires_at": iso_time(body.get("expires_at")),
                "refresh_expires_at": iso_time(body.get("refresh_expires_at")),
                "auth_url": state.auth_url,
                "config": str(state.config_path),
            }
        )
    elif mode is not Mode.QUIET:
        say(f"Logged in to {state.auth_url} as {user.get('username', username)}.")


@app.command()
def logout(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """End the session and revoke its refresh token on the server, then forget them locally.

    Examples:

      ec auth logout
    """
    mode = mode_of(ctx, as_json=as_json)
    state = state_of(ctx)
    token = state.need_token()
    revoked = False
    if not token.startswith(SA_TOKEN_PREFIX):
        refresh = state.config.refresh_token if state.from_config else None
        try:
            response = auth_service(state).request(
                "POST",
                "/api/logout",
                bearer=state.bearer(),
                json={"refresh_token": refresh} if refresh else None,
                ok=(200, 204),
            )
            revoked = response.status_code in (200, 204)
        except CliError as exc:
            # The session (and its refresh token) had already ended: forgetting
            # them locally is all that is left.
            if exc.exit_code != ExitCode.AUTH:
                raise
    forgot = state.from_config
    if forgot:

        def forget(config: Config) -> None:
            if config.token == token or config.refresh_token == state.config.refresh_token:
                config.forget_login()

        update_config(state.config_path, forget)
    if mode is Mode.JSON:
        emit_json({"session_revoked": revoked, "removed_from_config": forgot})
        return
    if mode is Mode.QUIET:
        return
    if token.startswith(SA_TOKEN_PREFIX):
        say(
            "Removed the service-account token from the config file; it stays valid until"
            " revoked (`ec auth tokens rm`)."
            if forgot
            else "Nothing to log out: a service-account token is revoked with `ec auth tokens rm`."
        )
    elif revoked:
        say("Logged out: the session and its refresh token are revoked.")
    else:
        say("The session had already ended; logged out.")


def _status(state: State) -> dict[str, Any]:
    token = state.need_token()
    service = auth_service(state)
    info: dict[str, Any] = {
        "auth_url": state.auth_url,
        "registry_url": state.registry_url,
        "token_source": state.token_source,
    }
    if token.startswith(SA_TOKEN_PREFIX):
        service.json(
            "GET",
            "/v2/token",
            basic=("ec", token),
            unauthorized="the service-account token was refused: revoked, expired or mistyped",
        )
        info.update({"kind": "service-account token", "hint": token[-4:]})
        return info
    bearer = state.bearer()
    session = service.json("GET", "/api/session", bearer=bearer)
    info.update(
        {
            "kind": "session",
            "username": session.get("username"),
            "user_id": session.get("user_id"),
            "admin": session.get("admin"),
            "expires_at": iso_time(session.get("expires_at")),
            "refreshed_until": state.config.refresh_expires_at
            if isinstance(bearer, LoginSession) and state.config.refresh_token
            else None,
        }
    )
    return info


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show who you are logged in as, and check that the credential still works.

    Examples:

      ec auth status

      ec --json auth status
    """
    mode = mode_of(ctx, as_json=as_json)
    state = state_of(ctx)
    info = _status(state)
    if mode is Mode.QUIET:
        return
    if mode is Mode.JSON:
        emit_json(info)
        return
    fields: list[tuple[str, Any]] = [("Auth service", state.auth_url)]
    if info["kind"] == "session":
        fields += [
            ("Logged in as", f"{info['username']} ({info['user_id']})"),
            ("Session expires", info["expires_at"]),
        ]
        if info["refreshed_until"]:
            fields.append(("Login lasts until", info["refreshed_until"]))
    else:
        fields.append(("Token", f"service-account token …{info['hint']}"))
    fields += [("Token from", state.token_source), ("Registry", state.registry_url)]
    emit_record(mode, info, ident=None, fields=fields)


@app.command("set-token")
def set_token(
    ctx: typer.Context,
    token: Annotated[
        str | None,
        typer.Argument(help="The token; '-' or nothing reads it from standard input."),
    ] = None,
) -> None:
    """Save a token (a session token, or an ecloud_ service-account token) in the config file.

    Examples:

      ec auth set-token "$SESSION_TOKEN"

      echo "$SA_TOKEN" | ec --base example.com auth set-token -
    """
    state = state_of(ctx)
    if token is None or token == "-":  # noqa: S105 - "-" means stdin
        token = (
            typer.prompt("Token", hide_input=True, err=True)
            if sys.stdin.isatty()
            else read_secret_from_stdin("token")
        )
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise CliError("the token must be one word without spaces", ExitCode.USAGE)

    def keep(config: Config) -> None:
        config.forget_login()  # a refresh token belongs to the login it came with
        config.token = token
        config.auth_url = state.auth_url or config.auth_url
        config.registry_url = state.registry_url or config.registry_url

    update_config(state.config_path, keep)
    say(f"Token saved to {state.config_path}.")
