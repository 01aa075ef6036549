"""``ec storage``: the storage products; today the container registry."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    help="""Storage: the container registry.

Examples:

  ec storage registry ls

  ec storage registry tags alice/app
""",
    no_args_is_help=True,
)
