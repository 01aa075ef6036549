"""Printing results: Rich tables for people, JSON for scripts (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["console", "emit_json", "human_size", "notice", "table"]

console = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def notice(message: str) -> None:
    """A remark for the person at the terminal (stderr, so stdout stays clean for pipes)."""
    _err.print(message, highlight=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str) -> None:
    rows = list(rows)
    if not rows:
        notice(empty)
        return
    grid = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("-" if v is None or v == "" else str(v) for v in row))
    console.print(grid)


def human_size(size: object) -> str:
    if not isinstance(size, int | float):
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
