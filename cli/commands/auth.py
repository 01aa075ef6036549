"""``ec auth login|logout|status|set-token``: the CLI's own credential."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cli.commands.common import JsonFlag, auth_service, state_of, wants_json
from cli.config import save_config
from cli.errors import CliError
from cli.output import console, emit_json
from cli.state import SA_TOKEN_PREFIX, State

__all__ = ["app"]

app = typer.Typer(
    help="""Log in and out, and manage service accounts and their tokens.

Examples:

  ec --auth-url http://127.0.0.1:5001 auth login

  echo "$PASSWORD" | ec auth login --username alice --password-stdin

  ec auth status

  ec auth service-accounts create --name ci --scope storage.me.registry=read,create,delete
""",
    no_args_is_help=True,
)


def _read_secret_from_stdin(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CliError(f"no {what} on standard input")
    return value


def _save(state: State, **changes: Any) -> None:
    config = state.config
    for key, value in changes.items():
        setattr(config, key, value)
    save_config(state.config_path, config)


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
    """Log in with your username and password; the session is saved in the config file.

    Examples:

      ec --base example.com auth login

      echo "$PASSWORD" | ec --auth-url http://127.0.0.1:5001 auth login -u alice --password-stdin
    """
    state = state_of(ctx)
    service = auth_service(state)
    if password_stdin:
        if not username:
            raise CliError("--password-stdin needs --username")
        password = _read_secret_from_stdin("password")
    else:
        username = username or typer.prompt("Username", err=True)
        password = typer.prompt("Password", hide_input=True, err=True)
    if password.startswith(SA_TOKEN_PREFIX):
        raise CliError(
            "a service-account token is not a password: use `ec auth set-token` or EC_TOKEN"
        )
    body = service.json(
        "POST",
        "/api/login",
        json={"username": username, "password": password},
        unauthorized="wrong username or password",
    )
    user = body.get("user", {}) if isinstance(body, dict) else {}
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        raise CliError("the auth service answered the login without a token")
    _save(
        state,
        token=token,
        username=user.get("username", username),
        auth_url=state.auth_url,
        registry_url=state.registry_url or state.config.registry_url,
    )
    if wants_json(ctx, as_json):
        emit_json(
            {
                "username": user.get("username"),
                "user_id": user.get("id"),
                "admin": user.get("admin"),
                "expires_at": body.get("expires_at"),
                "auth_url": state.auth_url,
                "config": str(state.config_path),
            }
        )
    else:
        console.print(f"Logged in to {state.auth_url} as {user.get('username', username)}.")


@app.command()
def logout(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """End the session on the server and forget it locally.

    Examples:

      ec auth logout
    """
    state = state_of(ctx)
    token = state.need_token()
    revoked = False
    if not token.startswith(SA_TOKEN_PREFIX):
        response = auth_service(state).request(
            "POST", "/api/logout", bearer=token, ok=(200, 204, 401)
        )
        # 401: the session had already ended; forgetting it locally is all that is left.
        revoked = response.status_code != 401
    forgot = state.config.token == token
    if forgot:
        _save(state, token=None)
    if wants_json(ctx, as_json):
        emit_json({"session_revoked": revoked, "removed_from_config": forgot})
        return
    if token.startswith(SA_TOKEN_PREFIX):
        console.print(
            "Removed the service-account token from the config file; it stays valid until"
            " revoked (`ec auth tokens rm`)."
            if forgot
            else "Nothing to log out: a service-account token is revoked with `ec auth tokens rm`."
        )
    elif revoked:
        console.print("Logged out: the session is revoked.")
    else:
        console.print("The session had already ended; logged out.")


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show who you are logged in as, and check that the credential still works.

    Examples:

      ec auth status

      ec --json auth status
    """
    state = state_of(ctx)
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
    else:
        session = service.json("GET", "/api/session", bearer=token)
        info.update(
            {
                "kind": "session",
                "username": session.get("username"),
                "user_id": session.get("user_id"),
                "admin": session.get("admin"),
                "expires_at": session.get("expires_at"),
            }
        )
    if wants_json(ctx, as_json):
        emit_json(info)
        return
    if info["kind"] == "session":
        console.print(f"Logged in to {state.auth_url} as {info['username']} ({info['user_id']}).")
    else:
        console.print(f"Using a service-account token (…{info['hint']}) with {state.auth_url}.")
    console.print(f"Token from: {state.token_source}")
    if state.registry_url:
        console.print(f"Registry: {state.registry_url}")


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
            else _read_secret_from_stdin("token")
        )
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise CliError("the token must be one word without spaces")
    _save(
        state,
        token=token,
        auth_url=state.auth_url or state.config.auth_url,
        registry_url=state.registry_url or state.config.registry_url,
    )
    console.print(f"Token saved to {state.config_path}.")
