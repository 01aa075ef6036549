"""``ec``: the ecloud command line.

Grammar: ``ec [--json] [--token T] [--base DOMAIN] [--auth-url URL]
[--registry-url URL] <group> <resource> <action>``. Every failure ends as one
``error: …`` line on stderr and a non-zero exit, never a traceback (set
``EC_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cli.commands import auth, service_accounts, storage, tokens
from cli.errors import CliError
from cli.state import build_state

__all__ = ["app", "main"]

app = typer.Typer(
    name="ec",
    help="""The ecloud command line: log in, manage service accounts, browse your registry.

Examples:

  ec --base example.com auth login

  ec auth service-accounts create --name ci --scope storage.me.registry=read,create,delete

  ec --json storage registry ls

  EC_TOKEN=ecloud_... ec storage registry tags alice/app

Configuration: ~/.config/ec/config.json (or $XDG_CONFIG_HOME/ec/config.json).
Environment: EC_TOKEN, EC_BASE, EC_AUTH_URL, EC_REGISTRY_URL, EC_TIMEOUT.
""",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
auth.app.add_typer(service_accounts.app, name="service-accounts")
auth.app.add_typer(tokens.app, name="tokens")
app.add_typer(auth.app, name="auth")
app.add_typer(storage.app, name="storage")


@app.callback()
def root(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", help="Token to use (beats EC_TOKEN and the config file).", show_default=False
        ),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="DOMAIN",
            help="Use https://auth.DOMAIN and https://registry.DOMAIN (or set EC_BASE).",
        ),
    ] = None,
    auth_url: Annotated[
        str | None, typer.Option("--auth-url", metavar="URL", help="The auth service's URL.")
    ] = None,
    registry_url: Annotated[
        str | None, typer.Option("--registry-url", metavar="URL", help="The registry's URL.")
    ] = None,
) -> None:
    if ctx.resilient_parsing:  # shell completion: no config reading, no errors
        return
    ctx.obj = build_state(
        json_output=json_output,
        token=token,
        base=base,
        auth_url=auth_url,
        registry_url=registry_url,
    )


def _fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    # Click handles usage errors, --help and Ctrl-C itself (standalone mode);
    # what escapes it is ours to turn into one line.
    try:
        app()
    except CliError as exc:
        _fail(exc.message, exc.exit_code)
    except Exception as exc:
        if os.environ.get("EC_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set EC_DEBUG=1 for details)")


if __name__ == "__main__":
    main()
