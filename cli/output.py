"""How every ``ec`` command prints, asks and ends: the one module command modules share.

Output follows gh, kubectl and docker:

- on a terminal, a table for people (sizes in KiB/MiB, ``-`` for nothing);
- when stdout is not a terminal, plain rows: tab-separated, one per line, no
  header, never wrapped, sizes in bytes, so ``awk``/``cut`` work;
- ``--json``: the server's records as JSON (the same on a terminal or not);
- ``-q``/``--quiet``: only the ids (the first column), or only the secret a
  command creates.

Times are ISO 8601 UTC everywhere (``2025-01-31T12:00:00Z``). Remarks for the
person at the terminal go to stderr, so stdout stays clean for pipes.

Destructive verbs call `confirm`: on a terminal they ask; without one they
need ``--yes`` (exit 2 otherwise). Failures are `CliError` with an `ExitCode`
(re-exported here, see `cli.errors` for the table).

A new command module needs only this::

    from cli.output import JsonFlag, QuietFlag, YesFlag, Column, mode_of, emit_rows, confirm
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import CliError, ExitCode

__all__ = [
    "CliError",
    "Column",
    "ExitCode",
    "JsonFlag",
    "Mode",
    "QuietFlag",
    "YesFlag",
    "confirm",
    "emit_done",
    "emit_json",
    "emit_record",
    "emit_rows",
    "emit_secret",
    "human_size",
    "iso_time",
    "mode_of",
    "notice",
    "say",
]

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (same as `ec --json ...`).")
]
QuietFlag = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only ids (or only the new secret).")
]
YesFlag = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal)."),
]

_out = Console(soft_wrap=True, highlight=False)
_err = Console(stderr=True, soft_wrap=True, highlight=False)


class Mode(Enum):
    TABLE = "table"
    PLAIN = "plain"
    JSON = "json"
    QUIET = "quiet"


def mode_of(ctx: typer.Context, *, as_json: bool = False, quiet: bool = False) -> Mode:
    """The output mode from this command's flags and the global ``--json``/``-q``."""
    root = ctx.find_root().params
    as_json = as_json or bool(root.get("json_output"))
    quiet = quiet or bool(root.get("quiet"))
    if as_json and quiet:
        raise CliError("--json and --quiet cannot be combined", ExitCode.USAGE)
    if as_json:
        return Mode.JSON
    if quiet:
        return Mode.QUIET
    return Mode.TABLE if sys.stdout.isatty() else Mode.PLAIN


@dataclass(frozen=True, slots=True)
class Column:
    """A column: ``kind`` is ``text``, ``size`` (bytes) or ``time`` (ISO 8601)."""

    header: str
    kind: str = "text"


def iso_time(value: object) -> str | None:
    """ISO 8601 UTC for an epoch number; strings (already ISO from the servers) pass."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def human_size(size: object) -> str:
    if not isinstance(size, int | float) or isinstance(size, bool):
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _cell(value: object, column: Column, mode: Mode) -> str:
    if column.kind == "time":
        value = iso_time(value)
    elif column.kind == "size" and mode is Mode.TABLE:
        value = human_size(value) if value is not None else None
    if value is None or value == "":
        return "-" if mode is Mode.TABLE else ""
    text = str(value)
    if mode is not Mode.TABLE:  # one record, one line: whatever the server sent
        text = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return text


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def notice(message: str) -> None:
    """A remark for the person at the terminal (stderr, so stdout stays clean for pipes)."""
    _err.print(message, markup=False)


def say(message: str) -> None:
    """A line of human output on stdout (no markup, no wrapping)."""
    _out.print(message, markup=False)


def emit_rows(
    mode: Mode,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    *,
    data: Any,
    empty: str,
) -> None:
    """A listing: `data` is what ``--json`` prints; the first column holds the ids."""
    if mode is Mode.JSON:
        emit_json(data)
        return
    rows = list(rows)
    if mode is Mode.QUIET:
        for row in rows:
            print(_cell(row[0], columns[0], mode))
        return
    if mode is Mode.PLAIN:
        for row in rows:
            print("\t".join(_cell(v, c, mode) for v, c in zip(row, columns, strict=True)))
        return
    if not rows:
        notice(empty)
        return
    grid = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        grid.add_column(column.header, overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(v, c, mode) for v, c in zip(row, columns, strict=True)))
    _out.print(grid)


def emit_record(
    mode: Mode, data: Any, *, ident: str | None, fields: Sequence[tuple[str, Any]]
) -> None:
    """One record: JSON, its id (quiet), or ``Label: value`` lines (a tab between when piped)."""
    if mode is Mode.JSON:
        emit_json(data)
    elif mode is Mode.QUIET:
        if ident is not None:
            print(ident)
    else:
        width = max((len(label) for label, _ in fields), default=0) + 1
        for label, value in fields:
            text = _cell(value, Column(label), mode)
            if mode is Mode.PLAIN:
                print(f"{label}\t{text}")
            else:
                say(f"{label + ':':<{width}} {text}")


def emit_done(mode: Mode, message: str, data: Any) -> None:
    """The result of an action: JSON `data`, nothing when quiet, else `message`."""
    if mode is Mode.JSON:
        emit_json(data)
    elif mode is not Mode.QUIET:
        say(message)


def emit_secret(mode: Mode, secret: str, data: Any, *, heading: str) -> None:
    """A secret shown once: quiet prints only it (for ``X=$(ec … -q)``)."""
    if mode is Mode.JSON:
        emit_json(data)
        return
    if mode is Mode.QUIET:
        print(secret)
        return
    say(heading)
    print(secret)
    notice("Copy this token now: it is not shown again.")


def confirm(question: str, *, yes: bool) -> None:
    """Ask before destroying something; without a terminal, ``--yes`` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(
            f"{question.rstrip('?')}: not confirmed (no terminal to ask on); pass --yes",
            ExitCode.USAGE,
        )
    if not typer.confirm(question, default=False, err=True):
        raise CliError("cancelled: nothing was changed", ExitCode.ERROR)
