"""The one error the CLI shows its user: a single clear line, never a traceback."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A failure to report as ``error: <message>`` on stderr with a non-zero exit."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
