"""``ec completion bash|zsh|fish``: the shell script that completes ``ec``.

Commands and options complete from the command tree; ids, repositories and
tags complete from the server when you are logged in (see `cli.completers`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

# Typer's own completion protocol (the script calls `ec` back with _EC_COMPLETE
# set); these two are public in typer.completion but not re-exported for mypy.
from typer.completion import (  # type: ignore[attr-defined]
    completion_init,
    get_completion_script,
)

__all__ = ["completion", "completion_init"]


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)],
) -> None:
    """Print the completion script for your shell.

    Examples:

      ec completion bash > ~/.local/share/bash-completion/completions/ec

      ec completion zsh > "${fpath[1]}/_ec"

      ec completion fish > ~/.config/fish/completions/ec.fish

      source <(ec completion bash)
    """
    script = get_completion_script(prog_name="ec", complete_var="_EC_COMPLETE", shell=shell.value)
    print(script)
