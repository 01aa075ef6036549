"""``ec auth sessions ls|rm``: the refresh tokens that keep your logins alive.

Each login of ``ec`` (and each ``docker login``) holds a refresh token;
revoking one ends that login at its next refresh. ``rm --all`` revokes every
session and refresh token of yours, this one included.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.commands.common import auth_service, segment, state_of
from cli.completers import complete_sessions
from cli.config import Config, update_config
from cli.errors import CliError, ExitCode
from cli.output import (
    Column,
    JsonFlag,
    QuietFlag,
    YesFlag,
    confirm,
    emit_done,
    emit_rows,
    mode_of,
)

__all__ = ["app"]

app = typer.Typer(
    help="""Your logins (refresh tokens): list them, revoke one, or revoke them all.

Examples:

  ec auth sessions ls

  ec auth sessions rm rt_4k2f...

  ec auth sessions rm --all --yes
""",
    no_args_is_help=True,
)


@app.command("ls")
def list_sessions(ctx: typer.Context, as_json: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """List your active refresh tokens (which client, when created, used, expiring).

    Examples:

      ec auth sessions ls

      ec auth sessions ls -q
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    body = auth_service(state).json("GET", "/api/refresh-tokens", bearer=state.need_session())
    tokens = body.get("refresh_tokens", []) if isinstance(body, dict) else []
    emit_rows(
        mode,
        (
            Column("ID"),
            Column("CLIENT"),
            Column("CREATED", "time"),
            Column("EXPIRES", "time"),
            Column("LAST USED", "time"),
        ),
        (
            (
                t.get("id"),
                t.get("client_id"),
                t.get("created_at"),
                t.get("expires_at"),
                t.get("last_used_at") or "never",
            )
            for t in tokens
        ),
        data=tokens,
        empty="No active sessions.",
    )


@app.command("rm")
def remove(
    ctx: typer.Context,
    session_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ID]...",
            help="Refresh-token ids from `ec auth sessions ls`.",
            autocompletion=complete_sessions,
            show_default=False,
        ),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Revoke every session and refresh token of yours (this too)."),
    ] = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Revoke refresh tokens: those logins end at their next refresh.

    Examples:

      ec auth sessions rm rt_4k2f...

      ec auth sessions rm --all
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    ids = session_ids or []
    if everything == bool(ids):
        raise CliError("name the sessions to revoke, or pass --all (not both)", ExitCode.USAGE)
    state = state_of(ctx)
    service, session = auth_service(state), state.need_session()
    if everything:
        confirm("Revoke every session and refresh token of yours, this login's included?", yes=yes)
        counts = service.json("POST", "/api/sessions/revoke-all", bearer=session)
        if state.from_config:
            update_config(state.config_path, Config.forget_login)
        emit_done(
            mode,
            f"Revoked {counts.get('revoked_sessions')} session(s) and"
            f" {counts.get('revoked_refresh_tokens')} refresh token(s); you are logged out.",
            counts,
        )
        return
    confirm(f"Revoke {', '.join(ids)}?", yes=yes)
    for session_id in ids:
        service.request("DELETE", f"/api/refresh-tokens/{segment(session_id)}", bearer=session)
    emit_done(mode, f"Revoked {', '.join(ids)}.", {"revoked": ids})
