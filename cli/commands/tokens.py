"""``ec auth tokens ls|create|rm``: the tokens of one service account."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer

from cli.commands.common import auth_service, segment, state_of
from cli.completers import complete_service_accounts, complete_tokens
from cli.output import (
    Column,
    JsonFlag,
    Mode,
    QuietFlag,
    YesFlag,
    confirm,
    emit_done,
    emit_rows,
    emit_secret,
    mode_of,
)

__all__ = ["TOKEN_COLUMNS", "ExpiresIn", "app", "emit_new_token", "token_rows"]

EXPIRY_CHOICES = ("30d", "90d", "365d", "never")


def _expiry(value: str) -> str:
    if value not in EXPIRY_CHOICES:
        raise typer.BadParameter(f"use one of {', '.join(EXPIRY_CHOICES)}")
    return value


ExpiresIn = Annotated[
    str,
    typer.Option(
        "--expires-in",
        help=f"Token lifetime: {', '.join(EXPIRY_CHOICES)}.",
        callback=_expiry,
    ),
]
ServiceAccountOpt = Annotated[
    str,
    typer.Option(
        "--service-account",
        "-a",
        metavar="ID",
        help="The service account's id.",
        autocompletion=complete_service_accounts,
    ),
]

app = typer.Typer(
    help="""Tokens of a service account (ecloud_...): create, list, revoke.

Examples:

  ec auth tokens ls --service-account sa_3k9f...

  ec auth tokens create --service-account sa_3k9f... --expires-in 30d

  ec auth tokens rm tok_8d2a...
""",
    no_args_is_help=True,
)

TOKEN_COLUMNS = (
    Column("ID"),
    Column("NAME"),
    Column("ENDS IN"),
    Column("CREATED", "time"),
    Column("EXPIRES", "time"),
    Column("LAST USED", "time"),
)


def token_rows(tokens: Iterable[dict[str, Any]]) -> list[Sequence[Any]]:
    return [
        (
            t.get("id"),
            t.get("name"),
            f"…{t.get('hint')}",
            t.get("created_at"),
            t.get("expires_at") or "never",
            t.get("last_used_at") or "never",
        )
        for t in tokens
    ]


def emit_new_token(mode: Mode, token: dict[str, Any], data: Any) -> None:
    expires = token.get("expires_at") or "never"
    emit_secret(
        mode,
        str(token.get("token")),
        data,
        heading=f"Token {token.get('id')} (expires {expires}):",
    )


@app.command("ls")
def list_tokens(
    ctx: typer.Context,
    service_account: ServiceAccountOpt,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """List the active tokens of a service account (never their secrets).

    Examples:

      ec auth tokens ls --service-account sa_3k9f...

      ec auth tokens ls -a sa_3k9f... -q
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    body = auth_service(state).json(
        "GET",
        f"/api/service-accounts/{segment(service_account)}/tokens",
        bearer=state.need_session(),
    )
    tokens = body.get("tokens", [])
    emit_rows(mode, TOKEN_COLUMNS, token_rows(tokens), data=tokens, empty="No active tokens.")


@app.command()
def create(
    ctx: typer.Context,
    service_account: ServiceAccountOpt,
    expires_in: ExpiresIn = "90d",
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "token",
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Create a token for a service account; the token is shown only once (-q: only it).

    Examples:

      ec auth tokens create --service-account sa_3k9f... --expires-in 365d --name deploy

      TOKEN=$(ec auth tokens create --service-account sa_3k9f... -q)
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    token = auth_service(state).json(
        "POST",
        f"/api/service-accounts/{segment(service_account)}/tokens",
        bearer=state.need_session(),
        json={"expires_in": expires_in, "name": name},
    )
    emit_new_token(mode, token, token)


@app.command("rm")
def remove(
    ctx: typer.Context,
    token_id: Annotated[
        str,
        typer.Argument(
            metavar="TOKEN_ID", help="The token's id (tok_...).", autocompletion=complete_tokens
        ),
    ],
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Revoke a token; it stops working at once.

    Examples:

      ec auth tokens rm tok_8d2a...

      ec auth tokens rm tok_8d2a... --yes
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    bearer = state.need_session()
    confirm(f"Revoke token {token_id}?", yes=yes)
    auth_service(state).request("DELETE", f"/api/tokens/{segment(token_id)}", bearer=bearer)
    emit_done(mode, f"Revoked token {token_id}.", {"revoked": token_id})
