"""The request id: one per HTTP request, carried by every log line about it.

A caller may send its own in ``X-Request-ID`` (a proxy or a client tracing a
call across services); anything that is not a short token of safe characters
is replaced by a generated id, so a log line never carries what a client
chose to inject. The id is answered in ``X-Request-ID`` and held in a context
variable for the duration of the request.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

__all__ = ["HEADER", "accept_request_id", "current_request_id", "new_request_id", "request_id_var"]

HEADER = "x-request-id"
_SAFE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("ecloud_request_id", default=None)


def new_request_id() -> str:
    return secrets.token_hex(12)


def accept_request_id(sent: str | None) -> str:
    """The caller's id when it is safe to log and echo, else a new one."""
    if sent and _SAFE.fullmatch(sent):
        return sent
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request being served, None outside a request."""
    return request_id_var.get()
