"""The audit log: one JSON line per issued token, failed login and denied scope.

Never pass a password, a token or a hash to this module: it logs what it is
given.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["audit"]

_logger = logging.getLogger("ecloud.audit")


def audit(event: str, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    _logger.info(json.dumps(record, separators=(",", ":"), default=str, sort_keys=True))
