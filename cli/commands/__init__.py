"""The command tree of ``ec``: one row per command group, under its parent.

A new group plugs in with one line here: its module exposes a Typer ``app``.
Parents come before their children.
"""

from __future__ import annotations

__all__ = ["TREE"]

# (parent path, name, module)
TREE: tuple[tuple[str, str, str], ...] = (
    ("", "auth", "cli.commands.auth"),
    ("auth", "service-accounts", "cli.commands.service_accounts"),
    ("auth", "tokens", "cli.commands.tokens"),
    ("", "storage", "cli.commands.storage"),
    ("storage", "registry", "cli.commands.registry"),
)
