"""``ec``: the ecloud command line.

Grammar: ``ec [--json] [-q] [--token T] [--base DOMAIN] [--auth-url URL]
[--registry-url URL] <group> <resource> <action>``. The command groups are
listed in `cli.commands.TREE`. Every failure ends as one ``error: …`` line on
stderr and an exit code from `cli.errors.ExitCode`, never a traceback (set
``EC_DEBUG=1`` to see one).
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from cli.commands import TREE
from cli.commands.completion import completion, completion_init
from cli.errors import CliError, ExitCode
from cli.state import build_state

__all__ = ["app", "main"]

app = typer.Typer(
    name="ec",
    help="""The ecloud command line: log in, manage service accounts, browse your registry.

Examples:

  ec --base example.com auth login

  ec auth service-accounts create --name ci --scope storage.me.registry=read,create,delete

  ec storage registry ls | awk '{print $1}'

  ec --json storage registry ls

  EC_TOKEN=ecloud_... ec storage registry tags alice/app

Output: a table on a terminal; tab-separated rows without a header when piped;
--json for JSON; -q for ids only. Times are ISO 8601 (UTC).

Exit codes: 0 success; 1 error; 2 usage (bad arguments, or a destructive verb
without --yes and no terminal to ask on); 4 not logged in or credentials
refused; 5 not found.

Configuration: ~/.config/ec/config.json (or $XDG_CONFIG_HOME/ec/config.json).
Environment: EC_TOKEN, EC_BASE, EC_AUTH_URL, EC_REGISTRY_URL, EC_TIMEOUT.
""",
    no_args_is_help=True,
    add_completion=False,  # `ec completion SHELL` instead
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _mount() -> None:
    groups: dict[str, typer.Typer] = {"": app}
    for parent, name, module in TREE:
        sub = importlib.import_module(module).app
        groups[parent].add_typer(sub, name=name)
        groups[f"{parent} {name}".strip()] = sub


_mount()
app.command("completion")(completion)
completion_init()


def _version() -> str:
    try:
        return version("ecloud-registry")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"ec {_version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only ids (or only the new secret).")
    ] = False,
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
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
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


def _fail(message: str, code: int = ExitCode.ERROR) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    # Click handles usage errors (exit 2), --help and Ctrl-C itself (standalone
    # mode); what escapes it is ours to turn into one line.
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
