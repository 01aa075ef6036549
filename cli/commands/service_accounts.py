"""``ec auth service-accounts ls|create|get|rm|rotate``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands.common import auth_service, segment, state_of
from cli.commands.tokens import TOKEN_COLUMNS, ExpiresIn, emit_new_token, token_rows
from cli.completers import complete_service_accounts
from cli.errors import CliError
from cli.output import (
    Column,
    JsonFlag,
    Mode,
    QuietFlag,
    YesFlag,
    confirm,
    emit_done,
    emit_record,
    emit_rows,
    mode_of,
    say,
)

__all__ = ["app"]

app = typer.Typer(
    help="""Service accounts: scoped credentials for automation (CI, deployments).

A service account holds scopes such as storage.me.registry=read,create,delete
(all your repositories) or storage.me.registry.alice/app=pull (one). Its tokens
(ecloud_...) are the password of `docker login` / `skopeo login`; the username
is then ignored.

Examples:

  SA_TOKEN=$(ec auth service-accounts create --name ci --scope storage.me.registry=read -q)

  ec auth service-accounts ls

  ec auth service-accounts rotate sa_3k9f...
""",
    no_args_is_help=True,
)

AccountId = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="The service account's id.", autocompletion=complete_service_accounts
    ),
]


def _account_fields(account: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("ID", account.get("id")),
        ("Name", account.get("name")),
        ("Scopes", " ".join(account.get("scopes", []))),
        ("Created", account.get("created_at")),
    ]


@app.command("ls")
def list_accounts(ctx: typer.Context, as_json: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """List your service accounts.

    Examples:

      ec auth service-accounts ls

      ec auth service-accounts ls -q

      ec auth service-accounts ls --json
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    body = auth_service(state).json("GET", "/api/service-accounts", bearer=state.need_session())
    accounts = body.get("service_accounts", [])
    emit_rows(
        mode,
        (Column("ID"), Column("NAME"), Column("SCOPES"), Column("CREATED", "time")),
        (
            (a.get("id"), a.get("name"), " ".join(a.get("scopes", [])), a.get("created_at"))
            for a in accounts
        ),
        data=accounts,
        empty="No service accounts.",
    )


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="A name, unique among yours.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help="storage.me.registry[.<repository>]=<actions> (repeatable); actions:"
            " read, create, update, delete or pull, push, delete.",
        ),
    ],
    expires_in: ExpiresIn = "90d",
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Create a service account and its first token (shown only once; -q prints only it).

    Examples:

      ec auth service-accounts create --name ci --scope storage.me.registry=read,create,delete

      SA_TOKEN=$(ec auth service-accounts create --name ci --scope storage.me.registry=read -q)

      ec auth service-accounts create --name puller --scope storage.me.registry.alice/app=pull
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    service, session = auth_service(state), state.need_session()
    account = service.json(
        "POST", "/api/service-accounts", bearer=session, json={"name": name, "scopes": scope}
    )
    try:
        token = service.json(
            "POST",
            f"/api/service-accounts/{segment(account['id'])}/tokens",
            bearer=session,
            json={"expires_in": expires_in},
        )
    except CliError as exc:
        raise CliError(
            f"service account {account['id']} was created, but its token was not: {exc.message};"
            f" run `ec auth tokens create --service-account {account['id']}`",
            exc.exit_code,
        ) from exc
    if mode in (Mode.TABLE, Mode.PLAIN):
        say("Created service account:")
        emit_record(mode, account, ident=account.get("id"), fields=_account_fields(account))
    emit_new_token(mode, token, {"service_account": account, "token": token})


@app.command()
def get(
    ctx: typer.Context,
    account_id: AccountId,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Show a service account, its scopes and its tokens (never their secrets).

    Examples:

      ec auth service-accounts get sa_3k9f...
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    service, session = auth_service(state), state.need_session()
    account = service.json("GET", f"/api/service-accounts/{segment(account_id)}", bearer=session)
    tokens = service.json(
        "GET", f"/api/service-accounts/{segment(account_id)}/tokens", bearer=session
    ).get("tokens", [])
    data = {"service_account": account, "tokens": tokens}
    emit_record(mode, data, ident=account.get("id"), fields=_account_fields(account))
    if mode in (Mode.TABLE, Mode.PLAIN):
        say("")
        emit_rows(mode, TOKEN_COLUMNS, token_rows(tokens), data=None, empty="No active tokens.")


@app.command("rm")
def remove(
    ctx: typer.Context,
    account_id: AccountId,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Delete a service account; its tokens stop working at once.

    Examples:

      ec auth service-accounts rm sa_3k9f...

      ec auth service-accounts rm sa_3k9f... --yes
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    session = state.need_session()
    confirm(f"Delete service account {account_id} and revoke all its tokens?", yes=yes)
    auth_service(state).request(
        "DELETE", f"/api/service-accounts/{segment(account_id)}", bearer=session
    )
    emit_done(
        mode,
        f"Deleted service account {account_id}; its tokens no longer work.",
        {"deleted": account_id},
    )


@app.command()
def rotate(
    ctx: typer.Context,
    account_id: AccountId,
    expires_in: ExpiresIn = "90d",
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Issue a new token for a service account, then revoke all its older tokens.

    Examples:

      ec auth service-accounts rotate sa_3k9f...

      NEW=$(ec auth service-accounts rotate sa_3k9f... --yes -q)
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    service, session = auth_service(state), state.need_session()
    old = service.json("GET", f"/api/service-accounts/{segment(account_id)}/tokens", bearer=session)
    old_ids = [str(t["id"]) for t in old.get("tokens", [])]
    confirm(
        f"Issue a new token for {account_id} and revoke its {len(old_ids)} current token(s)?",
        yes=yes,
    )
    new = service.json(
        "POST",
        f"/api/service-accounts/{segment(account_id)}/tokens",
        bearer=session,
        json={"expires_in": expires_in},
    )
    revoked = []
    for token_id in old_ids:
        try:
            service.request("DELETE", f"/api/tokens/{segment(token_id)}", bearer=session)
        except CliError as exc:
            raise CliError(
                f"a new token was issued but revoking {token_id} failed: {exc.message};"
                f" new token: {new.get('token')}",
                exc.exit_code,
            ) from exc
        revoked.append(token_id)
    if mode in (Mode.TABLE, Mode.PLAIN):
        say(f"Revoked {len(revoked)} old token(s) of {account_id}: {', '.join(revoked) or '-'}")
    emit_new_token(mode, new, {"token": new, "revoked": revoked})
