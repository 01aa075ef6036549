"""``ec auth password``: change your password.

The auth service then revokes every session and refresh token of yours (other
machines, docker credentials included); this ``ec`` logs in again with the new
password so it stays logged in.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.commands.common import auth_service, state_of
from cli.errors import CliError, ExitCode
from cli.login import read_secret_from_stdin, start_session
from cli.output import JsonFlag, Mode, emit_json, mode_of, say

__all__ = ["MAX_PASSWORD_BYTES", "change_password"]

MAX_PASSWORD_BYTES = 1024


def change_password(
    ctx: typer.Context,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the current password, then the new one, as two lines of standard input.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Change your password; every other session and refresh token of yours is revoked.

    Examples:

      ec auth password

      printf '%s\\n%s\\n' "$OLD" "$NEW" | ec auth password --password-stdin
    """
    mode = mode_of(ctx, as_json=as_json)
    state = state_of(ctx)
    session = state.need_session()
    username = state.config.username if state.from_config else None
    if password_stdin:
        current, new = (
            read_secret_from_stdin("current password"),
            read_secret_from_stdin("new password"),
        )
    else:
        current = typer.prompt("Current password", hide_input=True, err=True)
        new = typer.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    if len(new.encode()) > MAX_PASSWORD_BYTES:
        raise CliError(
            f"the new password is longer than {MAX_PASSWORD_BYTES} bytes", ExitCode.USAGE
        )
    if new == current:
        raise CliError("the new password is the same as the current one", ExitCode.USAGE)
    # A wrong current password is a 403 from the server, never a 401: the
    # session renews itself as usual.
    auth_service(state).request(
        "POST",
        "/api/password",
        bearer=session,
        json={"current_password": current, "new_password": new},
    )
    relogged = False
    if username:
        start_session(state, username, new)
        relogged = True
    if mode is Mode.JSON:
        emit_json({"changed": True, "logged_in_again": relogged})
    elif mode is not Mode.QUIET:
        say(
            "Password changed; every session and refresh token of yours was revoked"
            + ("; this ec is logged in again." if relogged else ".")
        )
