"""One ASGI middleware for both services: request metrics, access log, fixed headers.

It counts every request by method, route template and status, observes the
time to the first response byte, adds fixed headers to every response (the
registry's ``Docker-Distribution-API-Version``), and turns an exception that
escaped every handler into the service's JSON 500, logging the traceback
server-side only. It also gives every request its id (`shared.requestid`):
taken from ``X-Request-ID`` when safe, generated otherwise, answered in
``X-Request-ID`` and visible to the handlers (and every log line) while they
run.

After each request it writes exactly one access line (logger
``ecloud.access``, event ``request``): method, path with the values of
secret-bearing query parameters replaced (`safe_target`), status, body bytes
sent, duration, client address, user agent, and the verified user when the
service named one (`shared.requestuser`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logsetup import fields
from shared.metrics import Counter, Histogram
from shared.requestid import HEADER, accept_request_id, request_id_var
from shared.requestuser import open_request_user, request_user_var

__all__ = ["ObserveMiddleware", "route_label", "safe_target"]

access_logger = logging.getLogger("ecloud.access")

REDACTED = "REDACTED"
# Query parameters whose values are never logged: exact names, and any name
# containing one of the fragments (``access_token``, ``client_secret``, ...).
# ``_state`` is distribution's signed upload state.
_SECRET_NAMES = frozenset({"_state", "code", "sig", "signature", "x-amz-signature"})
_SECRET_FRAGMENTS = ("password", "passwd", "token", "secret", "credential", "key")
_MAX_TARGET = 2048
_MAX_AGENT = 256


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(f in lowered for f in _SECRET_FRAGMENTS)


def safe_target(path: str, query_string: bytes) -> str:
    """The path and query to log: secret values replaced, length bounded."""
    target = path
    if query_string:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        query = "&".join(
            f"{quote(k, safe='')}={REDACTED if _is_secret(k) else quote(v, safe='/:,*@')}"
            for k, v in pairs
        )
        target = f"{path}?{query}" if query else path
    if len(target) > _MAX_TARGET:
        return target[:_MAX_TARGET] + "..."
    return target


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded label values), or ``unmatched``."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObserveMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        requests: Counter,
        latency: Histogram,
        crash_response: Callable[[], Response],
        logger: logging.Logger,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.crash_response = crash_response
        self.logger = logger
        self.extra_headers = list(extra_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False
        begun = time.perf_counter()
        sent_id = None
        for name, value in scope.get("headers", ()):
            if name == HEADER.encode():
                sent_id = value.decode("latin-1")
                break
        request_id = accept_request_id(sent_id)
        token = request_id_var.set(request_id)
        caller, user_token = open_request_user()
        id_header = (HEADER.encode(), request_id.encode())
        sent_bytes = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started, sent_bytes
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [*message.get("headers", []), *self.extra_headers, id_header]
                message = {**message, "headers": headers}
                self.latency.observe(time.perf_counter() - begun, route=route_label(scope))
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            self.logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                await self.crash_response()(scope, receive, send_wrapper)
        finally:
            self.requests.inc(method=scope["method"], route=route_label(scope), status=str(status))
            line: dict[str, Any] = {
                "method": scope["method"],
                "path": safe_target(scope["path"], scope.get("query_string", b"")),
                "status": status,
                "bytes": sent_bytes,
                "duration_ms": round((time.perf_counter() - begun) * 1000, 3),
                "client": scope["client"][0] if scope.get("client") else None,
                "user_agent": _header(scope, b"user-agent")[:_MAX_AGENT] or None,
            }
            if caller.user is not None:
                line.update(user=caller.user, user_id=caller.user_id)
                if caller.service_account is not None:
                    line["service_account"] = caller.service_account
            access_logger.info("request", extra=fields(**line))
            request_user_var.reset(user_token)
            request_id_var.reset(token)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""
