"""``ec auth service-accounts ls|create|get|rm|rotate``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands.common import JsonFlag, auth_service, segment, state_of, wants_json
from cli.commands.tokens import ExpiresIn, print_new_token, token_rows, token_table
from cli.errors import CliError
from cli.output import console, emit_json, table

__all__ = ["app"]

app = typer.Typer(
    help="""Service accounts: scoped credentials for automation (CI, deployments).

A service account holds scopes such as storage.me.registry=read,create,delete
(all your repositories) or storage.me.registry.alice/app=pull (one). Its tokens
(ecloud_...) are used as the password of `docker login` / `skopeo login`.

Examples:

  ec auth service-accounts create --name ci --scope storage.me.registry=read,create,delete

  ec auth service-accounts ls

  ec auth service-accounts rotate sa_3k9f...
""",
    no_args_is_help=True,
)


def _account_line(account: dict[str, Any]) -> None:
    console.print(f"[bold]{account.get('name')}[/bold] ({account.get('id')})", highlight=False)
    for scope in account.get("scopes", []):
        console.print(f"  scope: {scope}", highlight=False)
    console.print(f"  created: {account.get('created_at')}", highlight=False)


@app.command("ls")
def list_accounts(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List your service accounts.

    Examples:

      ec auth service-accounts ls

      ec auth service-accounts ls --json
    """
    state = state_of(ctx)
    body = auth_service(state).json("GET", "/api/service-accounts", bearer=state.need_session())
    accounts = body.get("service_accounts", [])
    if wants_json(ctx, as_json):
        emit_json(accounts)
        return
    table(
        ("ID", "NAME", "SCOPES", "CREATED"),
        (
            (a.get("id"), a.get("name"), " ".join(a.get("scopes", [])), a.get("created_at"))
            for a in accounts
        ),
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
) -> None:
    """Create a service account and its first token (the token is shown only once).

    Examples:

      ec auth service-accounts create --name ci --scope storage.me.registry=read,create,delete

      ec auth service-accounts create --name puller --scope storage.me.registry.alice/app=pull
    """
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
            f" run `ec auth tokens create --service-account {account['id']}`"
        ) from exc
    if wants_json(ctx, as_json):
        emit_json({"service_account": account, "token": token})
        return
    console.print("Created service account:", highlight=False)
    _account_line(account)
    print_new_token(token)


@app.command()
def get(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(metavar="ID", help="The service account's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show a service account, its scopes and its tokens (never their secrets).

    Examples:

      ec auth service-accounts get sa_3k9f...
    """
    state = state_of(ctx)
    service, session = auth_service(state), state.need_session()
    account = service.json("GET", f"/api/service-accounts/{segment(account_id)}", bearer=session)
    tokens = service.json(
        "GET", f"/api/service-accounts/{segment(account_id)}/tokens", bearer=session
    )
    if wants_json(ctx, as_json):
        emit_json({"service_account": account, "tokens": tokens.get("tokens", [])})
        return
    _account_line(account)
    token_table(token_rows(tokens.get("tokens", [])))


@app.command("rm")
def remove(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(metavar="ID", help="The service account's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Delete a service account; its tokens stop working at once.

    Examples:

      ec auth service-accounts rm sa_3k9f...
    """
    state = state_of(ctx)
    auth_service(state).request(
        "DELETE", f"/api/service-accounts/{segment(account_id)}", bearer=state.need_session()
    )
    if wants_json(ctx, as_json):
        emit_json({"deleted": account_id})
    else:
        console.print(f"Deleted service account {segment(account_id)}; its tokens no longer work.")


@app.command()
def rotate(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(metavar="ID", help="The service account's id.")],
    expires_in: ExpiresIn = "90d",
    as_json: JsonFlag = False,
) -> None:
    """Issue a new token for a service account, then revoke all its older tokens.

    Examples:

      ec auth service-accounts rotate sa_3k9f...

      NEW=$(ec --json auth service-accounts rotate sa_3k9f... | jq -r .token.token)
    """
    state = state_of(ctx)
    service, session = auth_service(state), state.need_session()
    old = service.json("GET", f"/api/service-accounts/{segment(account_id)}/tokens", bearer=session)
    new = service.json(
        "POST",
        f"/api/service-accounts/{segment(account_id)}/tokens",
        bearer=session,
        json={"expires_in": expires_in},
    )
    revoked = []
    for token in old.get("tokens", []):
        try:
            service.request("DELETE", f"/api/tokens/{segment(token['id'])}", bearer=session)
        except CliError as exc:
            raise CliError(
                f"a new token was issued but revoking {token['id']} failed: {exc.message};"
                f" new token: {new.get('token')}"
            ) from exc
        revoked.append(token["id"])
    if wants_json(ctx, as_json):
        emit_json({"token": new, "revoked": revoked})
        return
    console.print(
        f"Revoked {len(revoked)} old token(s) of {account_id}: {', '.join(revoked) or '-'}",
        highlight=False,
    )
    print_new_token(new)
