"""``ec auth tokens ls|create|rm``: the tokens of one service account."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer

from cli.commands.common import JsonFlag, auth_service, segment, state_of, wants_json
from cli.output import console, emit_json, notice, table

__all__ = ["ExpiresIn", "app", "print_new_token", "token_rows", "token_table"]

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
    typer.Option("--service-account", "-a", metavar="ID", help="The service account's id."),
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


def token_table(rows: list[Sequence[Any]]) -> None:
    table(
        ("ID", "NAME", "ENDS IN", "CREATED", "EXPIRES", "LAST USED"),
        rows,
        empty="No active tokens.",
    )


def print_new_token(token: dict[str, Any]) -> None:
    expires = token.get("expires_at") or "never"
    console.print(f"Token {token.get('id')} (expires {expires}):", highlight=False)
    console.print(str(token.get("token")), highlight=False, soft_wrap=True)
    notice("Copy this token now: it is not shown again.")


@app.command("ls")
def list_tokens(
    ctx: typer.Context, service_account: ServiceAccountOpt, as_json: JsonFlag = False
) -> None:
    """List the active tokens of a service account (never their secrets).

    Examples:

      ec auth tokens ls --service-account sa_3k9f...
    """
    state = state_of(ctx)
    body = auth_service(state).json(
        "GET",
        f"/api/service-accounts/{segment(service_account)}/tokens",
        bearer=state.need_session(),
    )
    tokens = body.get("tokens", [])
    if wants_json(ctx, as_json):
        emit_json(tokens)
    else:
        token_table(token_rows(tokens))


@app.command()
def create(
    ctx: typer.Context,
    service_account: ServiceAccountOpt,
    expires_in: ExpiresIn = "90d",
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "token",
    as_json: JsonFlag = False,
) -> None:
    """Create a token for a service account; the token is shown only once.

    Examples:

      ec auth tokens create --service-account sa_3k9f... --expires-in 365d --name deploy
    """
    state = state_of(ctx)
    token = auth_service(state).json(
        "POST",
        f"/api/service-accounts/{segment(service_account)}/tokens",
        bearer=state.need_session(),
        json={"expires_in": expires_in, "name": name},
    )
    if wants_json(ctx, as_json):
        emit_json(token)
    else:
        print_new_token(token)


@app.command("rm")
def remove(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="The token's id (tok_...).")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a token; it stops working at once.

    Examples:

      ec auth tokens rm tok_8d2a...
    """
    state = state_of(ctx)
    auth_service(state).request(
        "DELETE", f"/api/tokens/{segment(token_id)}", bearer=state.need_session()
    )
    if wants_json(ctx, as_json):
        emit_json({"revoked": token_id})
    else:
        console.print(f"Revoked token {token_id}.")
