"""The audit log: one structured line per issued token, failed login, denied scope, change.

Audit lines are ordinary log records of the ``ecloud.audit`` logger whose
message is the event name and whose fields are the keyword arguments, so they
come out in the services' log format (`shared.logsetup`): in JSON,
``{"ts": ..., "level": "info", "logger": "ecloud.audit", "event": "token_issued",
"request_id": ..., "user": ..., ...}``.

Never pass a password, a token or a hash to this module: it logs what it is
given.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.logsetup import fields as _fields

__all__ = ["audit"]

_logger = logging.getLogger("ecloud.audit")


def audit(event: str, **fields: Any) -> None:
    _logger.info(event, extra=_fields(**fields))
