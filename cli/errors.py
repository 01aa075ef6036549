"""The one error the CLI shows its user (a single clear line, never a traceback) and the
exit codes it ends with.

=====  =====================================================================
code   meaning
=====  =====================================================================
0      success
1      any other error (server failure, network, refused operation, …)
2      usage: bad arguments or options, or a destructive verb without --yes
       when there is no terminal to ask on
4      not logged in, or the credentials were refused (expired, revoked, wrong)
5      not found (repository, tag, manifest, service account, token, session)
=====  =====================================================================
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CliError", "ExitCode"]


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 4
    NOT_FOUND = 5


class CliError(Exception):
    """A failure to report as ``error: <message>`` on stderr with a non-zero exit."""

    def __init__(self, message: str, exit_code: int = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = int(exit_code)
